// JSON Schema (draft-07) for platform files. Only the shape is checked here;
// cross-field rules (unique names, CEC references, timing order) live in
// platform.ts because they need paths that point at the offending field.

const NODE_NAME = '^[a-z][a-z0-9-]{0,30}$';
// Plane names end up inside node names ("plane-<p>") and interface names,
// so they are kept short.
const PLANE_NAME = '^[a-z][a-z0-9]{0,7}$';

export const platformSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'lparlab platform file',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'planes', 'controlNodes', 'cecs', 'lpars'],
  properties: {
    name: { type: 'string', pattern: NODE_NAME },
    transport: { type: 'string', enum: ['unix', 'ws'], default: 'unix' },
    ws: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', minLength: 1, default: '127.0.0.1' },
        basePort: { type: 'integer', minimum: 1024, maximum: 65000, default: 7400 },
      },
    },
    rclan: {
      type: 'object',
      additionalProperties: false,
      properties: {
        heartbeatMs: { type: 'integer', minimum: 10, maximum: 10000, default: 100 },
        deadAfterMs: { type: 'integer', minimum: 20, maximum: 60000, default: 400 },
        undeliverableAfterMs: { type: 'integer', minimum: 50, maximum: 600000, default: 1500 },
        window: { type: 'integer', minimum: 4, maximum: 16384, default: 256 },
      },
    },
    // Duplicates are rejected semantically so the error can name the second entry.
    planes: {
      type: 'array',
      minItems: 2,
      maxItems: 2,
      items: { type: 'string', pattern: PLANE_NAME },
    },
    controlNodes: {
      type: 'array',
      minItems: 1,
      maxItems: 2,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'serial'],
        properties: {
          name: { type: 'string', pattern: NODE_NAME },
          // Serials are folded into MAC addresses, hence the 16-bit range.
          serial: { type: 'integer', minimum: 1, maximum: 65535 },
        },
      },
    },
    cecs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: NODE_NAME },
        },
      },
    },
    lpars: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'cec'],
        properties: {
          name: { type: 'string', pattern: NODE_NAME },
          cec: { type: 'string', pattern: NODE_NAME },
        },
      },
    },
  },
};
