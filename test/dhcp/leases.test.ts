import { MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { leaseStoreContract } from './lease-store-contract.js';

leaseStoreContract('MemoryLeaseStore', () => new MemoryLeaseStore());
