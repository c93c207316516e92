"""A tiny OpenFlow 1.3 controller app for os-ken (osken-manager), used by test_ovs_gl.py.

Installs a table-miss rule that sends every packet to the controller; on each packet-in it
counts it (one line per packet-in in the file named by $GL_PACKET_IN_LOG) and answers with
a packet-out flooding the packet. No flows are installed besides the table-miss one, so
every packet crosses the controller: packet-in and packet-out through datapath gl.
"""

import os

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3


class FloodViaController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = open(os.environ["GL_PACKET_IN_LOG"], "a", buffering=1)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def features(self, ev):
        dp = ev.msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        actions = [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)]
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        dp.send_msg(parser.OFPFlowMod(datapath=dp, priority=0, match=parser.OFPMatch(),
                                      instructions=inst))
        self.log.write("connected\n")

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        in_port = msg.match["in_port"]
        self.log.write(f"packet-in in_port={in_port} len={len(msg.data)}\n")
        out = parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                                  actions=[parser.OFPActionOutput(ofp.OFPP_FLOOD)],
                                  data=msg.data)
        dp.send_msg(out)
