// Module entry: the AuditSocket class and the synchronous control calls. Arguments are validated in
// TypeScript first (src/native/binding.ts); the checks here are the cheap second line.
#include <linux/audit.h>
#include <napi.h>

#include <string>

#include "audit_socket.h"
#include "capabilities.h"
#include "control.h"
#include "replay_events_js.h"
#include "errors.h"
#include "sd_notify.h"
#include "text.h"
#include "proc_snapshot_js.h"
#include "triage_js.h"

namespace credwatch {

namespace {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "setErrorClass needs the AuditError class");
  }
  info.Env().GetInstanceData<AddonData>()->auditErrorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value GetStatusJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  audit_status s{};
  try {
    s = GetStatus();
  } catch (const SysError& e) {
    ThrowAuditError(env, e);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("mask", s.mask);
  o.Set("enabled", s.enabled);
  o.Set("failure", s.failure);
  o.Set("pid", s.pid);
  o.Set("rateLimit", s.rate_limit);
  o.Set("backlogLimit", s.backlog_limit);
  o.Set("lost", s.lost);
  o.Set("backlog", s.backlog);
  o.Set("featureBitmap", s.feature_bitmap);
  o.Set("backlogWaitTime", s.backlog_wait_time);
  o.Set("backlogWaitTimeActual", s.backlog_wait_time_actual);
  return o;
}

struct StatusField {
  const char* js;
  const char* kernel;
  uint32_t mask;
  uint32_t audit_status::*member;
};

// Applied one AUDIT_SET per field, in this order, so an error names exactly the field the kernel refused.
const StatusField kStatusFields[] = {
    {"failure", "failure", AUDIT_STATUS_FAILURE, &audit_status::failure},
    {"rateLimit", "rate_limit", AUDIT_STATUS_RATE_LIMIT, &audit_status::rate_limit},
    {"backlogLimit", "backlog_limit", AUDIT_STATUS_BACKLOG_LIMIT, &audit_status::backlog_limit},
    {"backlogWaitTime", "backlog_wait_time", AUDIT_STATUS_BACKLOG_WAIT_TIME, &audit_status::backlog_wait_time},
    {"pid", "pid", AUDIT_STATUS_PID, &audit_status::pid},
    {"enabled", "enabled", AUDIT_STATUS_ENABLED, &audit_status::enabled},
};

Napi::Value SetStatusJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "setStatus needs an object");
  Napi::Object changes = info[0].As<Napi::Object>();
  audit_status s{};
  uint32_t mask = 0;
  for (const StatusField& f : kStatusFields) {
    Napi::Value v = changes.Get(f.js);
    if (v.IsUndefined()) continue;
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d))) {
      throw Napi::RangeError::New(env, std::string(f.js) + " must be an unsigned 32-bit integer");
    }
    s.*f.member = static_cast<uint32_t>(d);
    mask |= f.mask;
  }
  // Never lock the configuration (enabled=2) or panic the machine on audit failure (failure=2).
  if ((mask & AUDIT_STATUS_ENABLED) && s.enabled > 1) throw Napi::RangeError::New(env, "enabled must be 0 or 1");
  if ((mask & AUDIT_STATUS_FAILURE) && s.failure > 1) throw Napi::RangeError::New(env, "failure must be 0 or 1");
  try {
    for (const StatusField& f : kStatusFields) {
      if (mask & f.mask) SetStatusField(f.mask, s, f.kernel);
    }
  } catch (const SysError& e) {
    ThrowAuditError(env, e);
  }
  return env.Undefined();
}

Napi::Value ChangeRuleJs(const Napi::CallbackInfo& info, uint16_t type) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "rule must be a Buffer");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  if (buf.Length() < sizeof(audit_rule_data)) {
    throw Napi::RangeError::New(env, "rule is shorter than struct audit_rule_data");
  }
  try {
    ChangeRule(type, buf.Data(), buf.Length());
  } catch (const SysError& e) {
    ThrowAuditError(env, e);
  }
  return env.Undefined();
}

Napi::Value AddRuleJs(const Napi::CallbackInfo& info) { return ChangeRuleJs(info, AUDIT_ADD_RULE); }
Napi::Value DeleteRuleJs(const Napi::CallbackInfo& info) { return ChangeRuleJs(info, AUDIT_DEL_RULE); }

Napi::Value ListRulesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> rules;
  try {
    rules = ListRules();
  } catch (const SysError& e) {
    ThrowAuditError(env, e);
  }
  Napi::Array out = Napi::Array::New(env, rules.size());
  for (size_t i = 0; i < rules.size(); i++) {
    out.Set(static_cast<uint32_t>(i), Napi::Buffer<char>::Copy(env, rules[i].data(), rules[i].size()));
  }
  return out;
}

Napi::Value SdNotifyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    throw Napi::TypeError::New(env, "sdNotify(socketPath, state) needs two strings");
  }
  try {
    SendNotify(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value());
  } catch (const SysError& e) {
    ThrowAuditError(env, e);
  }
  return env.Undefined();
}

// dropCapabilities(keep: number[]): keeps only the listed capability numbers (validated in TypeScript).
Napi::Value DropCapabilitiesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "dropCapabilities needs an array of capability numbers");
  Napi::Array keep = info[0].As<Napi::Array>();
  uint64_t mask = 0;
  for (uint32_t i = 0; i < keep.Length(); i++) {
    Napi::Value v = keep.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d < 64) || d != static_cast<double>(static_cast<int>(d))) {
      throw Napi::RangeError::New(env, "capability numbers must be integers 0..63");
    }
    mask |= 1ULL << static_cast<int>(d);
  }
  CapabilityDropResult r{};
  try {
    r = DropCapabilities(mask);
  } catch (const SysError& e) {
    ThrowAuditError(env, e);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("threads", r.threads);
  o.Set("threadsMissed", r.threadsMissed);
  return o;
}

// Test hook: runs the record-text decoder on arbitrary bytes.
Napi::Value DecodeRecordTextJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "needs a Buffer");
  auto buf = info[0].As<Napi::Buffer<char>>();
  std::u16string scratch;
  return Napi::Value(env, MakeRecordString(env, buf.Data(), buf.Length(), scratch));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("AuditSocket", AuditSocket::Define(env));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("getStatus", Napi::Function::New(env, GetStatusJs, "getStatus"));
  exports.Set("setStatus", Napi::Function::New(env, SetStatusJs, "setStatus"));
  exports.Set("addRule", Napi::Function::New(env, AddRuleJs, "addRule"));
  exports.Set("deleteRule", Napi::Function::New(env, DeleteRuleJs, "deleteRule"));
  exports.Set("listRules", Napi::Function::New(env, ListRulesJs, "listRules"));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotifyJs, "sdNotify"));
  exports.Set("dropCapabilities", Napi::Function::New(env, DropCapabilitiesJs, "dropCapabilities"));
  exports.Set("decodeRecordText", Napi::Function::New(env, DecodeRecordTextJs, "decodeRecordText"));
  exports.Set("triageRecords", Napi::Function::New(env, TriageRecordsJs, "triageRecords"));
  exports.Set("procSnapshots", Napi::Function::New(env, ProcSnapshotsJs, "procSnapshots"));
  RegisterReplayEvents(env, exports);
  return exports;
}

}  // namespace

}  // namespace credwatch

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return credwatch::Init(env, exports); }

NODE_API_MODULE(credwatch_audit, InitModule)
