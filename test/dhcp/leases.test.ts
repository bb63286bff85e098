import { MemoryLeaseStore } from '../../server/dhcp/leases.js';
import { leaseStoreContract } from './lease-store-contract.js';

leaseStoreContract('MemoryLeaseStore', () => new MemoryLeaseStore());
