#include "dataplane/api/wire.hpp"
#include "dataplane/api/message.hpp"

namespace gl::api {

std::string_view msg_type_name(MsgType t) {
  switch (t) {
    case MsgType::kInfo:
      return "info";
    case MsgType::kPortAdd:
      return "port-add";
    case MsgType::kPortDel:
      return "port-del";
    case MsgType::kPortList:
      return "port-list";
    case MsgType::kPortGet:
      return "port-get";
    case MsgType::kPortSet:
      return "port-set";
    case MsgType::kFlowPut:
      return "flow-put";
    case MsgType::kFlowDel:
      return "flow-del";
    case MsgType::kFlowGet:
      return "flow-get";
    case MsgType::kFlowDump:
      return "flow-dump";
    case MsgType::kFlowFlush:
      return "flow-flush";
    case MsgType::kExecute:
      return "execute";
    case MsgType::kExecuteBatch:
      return "execute-batch";
    case MsgType::kUpcallSubscribe:
      return "upcall-subscribe";
    case MsgType::kUpcall:
      return "upcall";
    case MsgType::kUpcallBatch:
      return "upcall-batch";
    case MsgType::kStats:
      return "stats";
    case MsgType::kStatsClear:
      return "stats-clear";
    case MsgType::kSetConfig:
      return "set-config";
    case MsgType::kSaAdd:
      return "sa-add";
    case MsgType::kSaDel:
      return "sa-del";
    case MsgType::kSaDump:
      return "sa-dump";
    case MsgType::kCtDump:
      return "ct-dump";
    case MsgType::kCtFlush:
      return "ct-flush";
    case MsgType::kCtGetConfig:
      return "ct-get-config";
    case MsgType::kCtSetMaxConns:
      return "ct-set-maxconns";
    case MsgType::kCtSetTcpSeqCheck:
      return "ct-set-tcp-seq-check";
    case MsgType::kCtSetLimits:
      return "ct-set-limits";
    case MsgType::kCtDelLimits:
      return "ct-del-limits";
    case MsgType::kCtGetLimits:
      return "ct-get-limits";
    case MsgType::kCtStats:
      return "ct-stats";
    case MsgType::kCtSetTimeoutPolicy:
      return "ct-set-timeout-policy";
    case MsgType::kCtGetTimeoutPolicy:
      return "ct-get-timeout-policy";
    case MsgType::kCtDelTimeoutPolicy:
      return "ct-del-timeout-policy";
    case MsgType::kCtDumpTimeoutPolicies:
      return "ct-dump-timeout-policies";
    case MsgType::kIpfSetEnabled:
      return "ipf-set-enabled";
    case MsgType::kIpfSetMinFrag:
      return "ipf-set-min-frag";
    case MsgType::kIpfSetMaxNfrags:
      return "ipf-set-max-nfrags";
    case MsgType::kIpfGetStatus:
      return "ipf-get-status";
    case MsgType::kIpfDump:
      return "ipf-dump";
    case MsgType::kFwBegin:
      return "fw-begin";
    case MsgType::kFwIpcache:
      return "fw-ipcache";
    case MsgType::kFwPort:
      return "fw-port";
    case MsgType::kFwRules:
      return "fw-rules";
    case MsgType::kFwCommit:
      return "fw-commit";
    case MsgType::kFwClear:
      return "fw-clear";
    case MsgType::kFwStatus:
      return "fw-status";
    case MsgType::kFwEvents:
      return "fw-events";
    case MsgType::kFwRuleStats:
      return "fw-rule-stats";
    case MsgType::kFwCtDump:
      return "fw-ct-dump";
    case MsgType::kFwCtFlush:
      return "fw-ct-flush";
    case MsgType::kFwTrace:
      return "fw-trace";
    case MsgType::kFwQuarantine:
      return "fw-quarantine";
    case MsgType::kFwHosts:
      return "fw-hosts";
  }
  return "unknown";
}

std::string_view header_error_name(HeaderError e) {
  switch (e) {
    case HeaderError::kOk:
      return "ok";
    case HeaderError::kShort:
      return "message shorter than its header";
    case HeaderError::kBadMagic:
      return "bad magic";
    case HeaderError::kBadVersion:
      return "unsupported API version";
    case HeaderError::kBadLength:
      return "length field does not match the datagram";
    case HeaderError::kBadReserved:
      return "reserved bits set";
  }
  return "unknown";
}

}  // namespace gl::api
