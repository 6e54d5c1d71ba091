#!/usr/bin/python3
# Real-peer check with Samba's own DCE/RPC client library (python3-samba): strict NDR parsing and a
# bind that proposes bind-time feature negotiation. ncacn_ip_tcp carries the same PDUs as ncacn_np.
# Usage: samba_srvsvc_client.py PORT. Prints one JSON object.
import json
import sys

from samba import credentials
from samba.dcerpc import srvsvc
from samba.param import LoadParm

port = int(sys.argv[1])
lp = LoadParm()
creds = credentials.Credentials()
creds.set_anonymous()
c = srvsvc.srvsvc('ncacn_ip_tcp:127.0.0.1[%d]' % port, lp, creds)
out = {}

ctr = srvsvc.NetShareInfoCtr()
ctr.level = 1
ctr.ctr = srvsvc.NetShareCtr1()
info, total, resume = c.NetShareEnumAll('\\\\127.0.0.1', ctr, 0xffffffff, 0)  # MS-SRVS opnum 15
out['enum1'] = {'total': total, 'resume': resume,
                'shares': [[s.name, s.type, s.comment] for s in info.ctr.array]}

ctr.level = 502
ctr.ctr = srvsvc.NetShareCtr502()
info, total, resume = c.NetShareEnumAll(None, ctr, 0xffffffff, None)
out['enum502'] = [[s.name, s.path, s.password, s.max_users, s.current_users] for s in info.ctr.array]

i = c.NetShareGetInfo(None, 'vms', 502)
out['get502'] = [i.name, i.path, i.max_users, i.current_users]

try:
    c.NetShareGetInfo(None, 'nosuch', 1)
    out['getMissing'] = 'no error'
except Exception as e:
    out['getMissing'] = e.args[0]

i = c.NetSrvGetInfo(None, 101)
out['server101'] = [i.platform_id, i.server_name, i.version_major, i.version_minor, i.server_type, i.comment]
i = c.NetSrvGetInfo(None, 102)
out['server102'] = [i.server_name, i.userpath, i.disc, i.announce]

try:
    ctr.level = 1
    ctr.ctr = srvsvc.NetShareCtr1()
    c.NetShareEnum(None, ctr, 0xffffffff, None)  # Samba's opnum 36 (NetrShareEnumSticky): not served
    out['opnum36'] = 'no error'
except Exception as e:
    out['opnum36'] = e.args[0]

print(json.dumps(out))
