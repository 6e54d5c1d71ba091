// The posix IOS driver: a share is a local directory.
//
// openShare(root, { readOnly, stateDir? }): `stateDir` (extra, optional) moves the metadata sidecar
// (meta.lmdb) and the named streams (streams/) out of <root>/.tessera. Behaviour notes (see share.ts,
// handle.ts, sidecar.ts, streams.ts):
// - names: case-insensitive, case-preserving (toUpperCase folding), exact case wins;
// - file ids: inode numbers; creation time, DOS attributes and security descriptors persist in LMDB;
// - READONLY and the other DOS bits live only in the sidecar: host mode bits are neither read nor
//   changed, so host permissions and client attributes stay independent;
// - named streams live under <stateDir>/streams/<fileId>/ (streams.ts), out of the visible tree;
// - allocation asked for (create AllocationSize, FileAllocationInformation) is kept in the sidecar and
//   reported, not reserved (Node has no fallocate); files are sparse-capable;
// - times: exact client-set times (ChangeTime included) in the sidecar while the host ctime holds.
import { IOS_SPI_VERSION, type IosDriver, type IosShare } from '../spi.js';
import { PosixShare, type PosixShareOptions } from './share.js';

export { PosixShare, type PosixShareOptions } from './share.js';

export const posixDriver: IosDriver = {
  name: 'posix',
  spiVersion: IOS_SPI_VERSION,
  openShare(root: string, options: { readOnly?: boolean }): Promise<IosShare> {
    return PosixShare.open(root, options as PosixShareOptions);
  },
};
