#!/usr/bin/python3
# Real-peer check for the srvsvc endpoint: impacket's MS-SRVS client over ncacn_ip_tcp (same
# connection-oriented PDUs as ncacn_np) against the Node test server. Prints one JSON object.
# Usage: impacket_srvsvc_client.py PORT [FRAGMENT_SIZE]
import json
import sys

from impacket.dcerpc.v5 import srvs, transport
from impacket.dcerpc.v5.rpcrt import DCERPCException

port = int(sys.argv[1])
frag = int(sys.argv[2]) if len(sys.argv) > 2 else 0
out = {}


def text(v):
    # impacket hands a NULL LPWSTR back as b'' and a string with its NUL terminator.
    return None if v is None or v == b'' else str(v).rstrip('\x00')


rpc = transport.DCERPCTransportFactory('ncacn_ip_tcp:127.0.0.1[%d]' % port)
dce = rpc.get_dce_rpc()
dce.connect()
dce.bind(srvs.MSRPC_UUID_SRVS)
if frag:
    dce.set_max_fragment_size(frag)  # request fragments of `frag` stub bytes

r = srvs.hNetrShareEnum(dce, 1)
out['enum1'] = {
    'total': r['TotalEntries'],
    'shares': [[text(s['shi1_netname']), s['shi1_type'], text(s['shi1_remark'])]
               for s in r['InfoStruct']['ShareInfo']['Level1']['Buffer']],
}

r = srvs.hNetrShareEnum(dce, 0)
out['enum0'] = [text(s['shi0_netname']) for s in r['InfoStruct']['ShareInfo']['Level0']['Buffer']]

r = srvs.hNetrShareEnum(dce, 502)
out['enum502'] = [[text(s['shi502_netname']), s['shi502_type'], text(s['shi502_path']), s['shi502_max_uses'],
                   s['shi502_current_uses'], s['shi502_reserved']]
                  for s in r['InfoStruct']['ShareInfo']['Level502']['Buffer']]

r = srvs.hNetrShareGetInfo(dce, 'Data\x00', 2)
i = r['InfoStruct']['ShareInfo2']
out['get2'] = [text(i['shi2_netname']), i['shi2_type'], text(i['shi2_remark']), text(i['shi2_path']),
               i['shi2_max_uses'], text(i['shi2_passwd'])]

r = srvs.hNetrShareGetInfo(dce, 'data\x00', 1005)
out['get1005'] = r['InfoStruct']['ShareInfo1005']['shi1005_flags']

try:
    srvs.hNetrShareGetInfo(dce, 'nosuch\x00', 1)
    out['getMissing'] = 'no error'
except DCERPCException as e:
    out['getMissing'] = e.get_error_code()

r = srvs.hNetrServerGetInfo(dce, 101)
i = r['InfoStruct']['ServerInfo101']
out['server101'] = [i['sv101_platform_id'], text(i['sv101_name']), i['sv101_version_major'],
                    i['sv101_version_minor'], i['sv101_type'], text(i['sv101_comment'])]

r = srvs.hNetrServerGetInfo(dce, 102)
i = r['InfoStruct']['ServerInfo102']
out['server102'] = [text(i['sv102_name']), text(i['sv102_userpath'])]

try:
    srvs.hNetrShareEnumSticky(dce, 1)  # opnum 36: not implemented here
    out['sticky'] = 'no error'
except DCERPCException as e:
    out['sticky'] = str(e)

print(json.dumps(out, default=repr))
dce.disconnect()
