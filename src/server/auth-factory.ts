// Builds the authentication state machine of one SESSION_SETUP exchange from the server's settings.

import { SpnegoServer } from '../auth/spnego-server.js';
import type { Server } from './server.js';

export function createSpnegoServer(server: Server): SpnegoServer {
  const id = server.identity;
  return new SpnegoServer({
    store: server.options.credentials,
    netbiosDomain: id.netbiosName,
    netbiosComputer: id.netbiosName,
    dnsDomain: id.dnsDomain || id.dnsName,
    dnsComputer: id.dnsName,
    allowGuest: server.options.allowGuest,
    allowAnonymous: server.options.allowAnonymous,
    clock: server.clock,
    random: server.random,
  });
}
