export * from './media-types.js';
export * from './digest.js';
export * from './platform.js';
export * from './schemas.js';
