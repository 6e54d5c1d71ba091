// Every command family the state machine applies. The order is irrelevant (command names are
// unique; StateMachine.open refuses duplicates); the set must be identical on every node, which
// RECORD_VERSION (codec.ts) guards.
import type { HandlerTable } from '../tx.js';
import { clusterHandlers } from './cluster.js';
import { collectorHandlers } from './collector.js';
import { extentHandlers } from './extents.js';
import { namespaceHandlers } from './namespace.js';
import { opensHandlers } from './opens.js';
import { sysHandlers } from './sys.js';

export const metaHandlers: HandlerTable[] = [sysHandlers, clusterHandlers, namespaceHandlers, extentHandlers, opensHandlers, collectorHandlers];
