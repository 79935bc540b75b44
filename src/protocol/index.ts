/** The MarcoPolo wire protocol: messages, codec and limits. Pure: no I/O. */
export * from './json.js';
export * from './limits.js';
export * from './messages.js';
export * from './codec.js';
