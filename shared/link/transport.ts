import type { Link, LinkServer } from './link.ts';
import { connectUnix, listenUnix } from './unix-link.ts';

/**
 * Link addresses are URLs: `unix:/path/to.sock` or `ws://host:port`. Every
 * process takes them on its command line, so the same service runs as a local
 * child process or in a container.
 */
/** WebSocket links load the ws package only when a process has one: ~6 MB of RSS a process otherwise (issue 10 item 3). */
const wsLink = () => import('./ws-link.ts');

export function connectLink(url: string): Promise<Link> {
  if (url.startsWith('unix:')) return connectUnix(url.slice(5));
  if (url.startsWith('ws://')) return wsLink().then((m) => m.connectWs(url));
  throw new Error(`unsupported link address "${url}" (expected unix:/path or ws://host:port)`);
}

export function listenLink(url: string, onLink: (link: Link) => void): Promise<LinkServer> {
  if (url.startsWith('unix:')) return listenUnix(url.slice(5), onLink);
  if (url.startsWith('ws://')) return wsLink().then((m) => m.listenWs(url, onLink));
  throw new Error(`unsupported link address "${url}" (expected unix:/path or ws://host:port)`);
}
