// Commands of the metadata service itself.
import { ok, type HandlerTable } from '../tx.js';

export const sysHandlers: HandlerTable = {
  /**
   * Does nothing. The service sends one to carry a raised watermark after abandoning a proposal, so
   * the abandoned sequence number becomes definitely unappliable (src/meta/service.ts).
   */
  'sys.noop': () => ok(),
};
