export { Netns, assertRoot, run } from '../../server/demo/netns.js';
