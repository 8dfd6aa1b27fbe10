#include "proc_snapshot_js.h"

#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "batch.h"
#include "proc_snapshot.h"

namespace credwatch {

namespace {

std::set<uint32_t> PidSet(Napi::Env env, const Napi::Object& o, const char* name) {
  std::set<uint32_t> out;
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return out;
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string("probe.") + name + " must be an array of pids");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value p = a.Get(i);
    if (!p.IsNumber()) throw Napi::TypeError::New(env, std::string("probe.") + name + " must hold numbers");
    out.insert(p.As<Napi::Number>().Uint32Value());
  }
  return out;
}

}  // namespace

Napi::Value ProcSnapshotsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray()) {
    throw Napi::TypeError::New(env, "procSnapshots(procRoot, syscallTexts[], probe?)");
  }
  const std::string root = info[0].As<Napi::String>().Utf8Value();
  std::vector<uint32_t> probed;
  std::set<uint32_t> gone;
  std::set<uint32_t> denied;
  const bool fake = info.Length() > 2 && info[2].IsObject();
  if (fake) {
    gone = PidSet(env, info[2].As<Napi::Object>(), "gone");
    denied = PidSet(env, info[2].As<Napi::Object>(), "denied");
  }
  ProcSnapshots snaps = fake ? ProcSnapshots(root,
                                             [&](uint32_t pid) {
                                               probed.push_back(pid);
                                               if (gone.count(pid) != 0) return ProcSnapshots::SignalProbeResult{-1, ESRCH};
                                               if (denied.count(pid) != 0) return ProcSnapshots::SignalProbeResult{-1, EPERM};
                                               return ProcSnapshots::SignalProbeResult{0, 0};
                                             })
                             : ProcSnapshots(root);
  Batch out;
  Napi::Array texts = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < texts.Length(); i++) {
    Napi::Value t = texts.Get(i);
    if (!t.IsString()) throw Napi::TypeError::New(env, "syscallTexts[] must be strings");
    const std::string text = t.As<Napi::String>().Utf8Value();
    snaps.NoteSyscallRecord(text.data(), text.size(), 0, &out);
  }
  Napi::Array list = Napi::Array::New(env, out.records.size());
  for (size_t i = 0; i < out.records.size(); i++) {
    const RecordRef& r = out.records[i];
    list.Set(static_cast<uint32_t>(i), Napi::String::New(env, out.bytes.data() + r.offset, r.length));
  }
  Napi::Array pids = Napi::Array::New(env, probed.size());
  for (size_t i = 0; i < probed.size(); i++) pids.Set(static_cast<uint32_t>(i), Napi::Number::New(env, probed[i]));
  Napi::Object ret = Napi::Object::New(env);
  ret.Set("snapshots", list);
  ret.Set("probed", pids);
  ret.Set("skippedGone", Napi::Number::New(env, static_cast<double>(snaps.skippedGone())));
  return ret;
}

}  // namespace credwatch
