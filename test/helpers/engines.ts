// The engines the workload's behaviour tests run against: the native engine
// (native/engine/, when built) and the Node client and server
// (harness/workload/). Each test file picks the tests that matter for the
// Node variant, so the suite's time does not double.
import { engineUnavailable, type EngineKind } from '../../harness/engine.ts';

export const ENGINES: EngineKind[] = engineUnavailable() === null ? ['native', 'node'] : ['node'];

/** The run flag for an engine. */
export const engineFlag = (e: EngineKind): string[] => ['--engine', e];

/** A test title's suffix naming the engine. */
export const onEngine = (e: EngineKind): string => ` [${e}]`;
