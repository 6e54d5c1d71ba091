// Module dependency rules of ../shared/design/ARCHITECTURE.md ("Modules and who may import whom"),
// checked mechanically by `npm run lint`. Data flows top to bottom; nothing imports upwards.
const only = (from, allowed) => ({
  name: `${from}-imports-only-${allowed.join('-') || 'itself'}`,
  severity: 'error',
  comment: `src/${from} may import only ${allowed.length ? allowed.map((a) => 'src/' + a).join(', ') : 'nothing else from src'}`,
  from: { path: `^src/${from}/` },
  to: {
    path: '^src/',
    pathNot: [`^src/${from}/`, ...allowed.map((a) => `^src/${a}`)],
  },
});

module.exports = {
  forbidden: [
    only('base', []),
    only('protocol', ['base']),
    only('crypto', ['base']),
    only('auth', ['base', 'protocol', 'crypto']),
    only('rpc', ['base', 'protocol']),
    only('log', ['base']),
    only('objstore', ['base']),
    only('meta', ['base', 'log']),
    only('ios', ['base', 'objstore', 'meta']),
    only('cluster', ['base', 'meta', 'log']),
    // The server sees the IOS SPI, the metadata service and the open table's typed client (its
    // commands and reads), never a concrete driver or backend, nor the records' layout.
    only('server', ['base', 'protocol', 'crypto', 'auth', 'rpc', 'ios/spi', 'meta/service', 'meta/opens-client']),
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'runtime import cycles; type-only imports (a handler naming the Connection type) are fine',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'storage-never-sees-smb',
      severity: 'error',
      comment: 'IOS drivers and the object store never see an SMB type (ARCHITECTURE.md)',
      from: { path: '^src/(ios|objstore)/' },
      to: { path: '^src/(protocol|server|auth|crypto|rpc)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
