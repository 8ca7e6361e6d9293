import type { NetStack } from '../net/net-stack.ts';

/** The partition's network stack for a verb that needs it; a verb asked before a control node configured it fails saying so. */
export type StackPort = () => NetStack;

export function configuredStack(lpar: { readonly stack?: NetStack }): StackPort {
  return () => {
    if (!lpar.stack) throw new Error('the network is not configured yet (no control node has answered)');
    return lpar.stack;
  };
}
