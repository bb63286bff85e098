import { MemoryEventStore } from '../../server/events/store.js';
import { eventStoreContract } from './event-store-contract.js';

eventStoreContract('MemoryEventStore', () => new MemoryEventStore());
