export * from './profile.js';
export * from './error.js';
export * from './mac.js';
export * from './parse.js';
export * from './store.js';
export * from './sightings.js';
export * from './slot.js';
