// The binding of native/replay_events.h: `new ReplayEventScanner(spec)`, then push(buffer) per chunk
// of a file, endFile() after each file and flush() at the end. Each returns
// [out, fallbackBytes, fallbackMeta, failures]:
//   out           the JSON lines: their length when they were written into the `target` Buffer given
//                 (reused by the caller, so steady replay allocates nothing), else a new Buffer;
//   fallbackBytes Buffer of the record lines of events TypeScript builds (null when none);
//   fallbackMeta  Uint32Array: per fallback event, outOffset, incomplete (0/1), record count, then
//                 (offset, length) in fallbackBytes per record;
//   failures      [reason, Buffer of the line] for the first parse failures (all are counted);
//   noteEnds      findings mode (a triage spec given to the constructor): out holds process notes, not
//                 JSON, and this Uint32Array the end offset of each (null when none).
// src/cli/commands/replay-native.ts validates the spec and does the interleaving.
#include "replay_events_js.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "replay_events.h"
#include "triage.h"
#include "triage_js.h"

namespace credwatch {

namespace {

std::vector<std::string> Strings(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string("replay spec: ") + name + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value s = a.Get(i);
    if (!s.IsString()) throw Napi::TypeError::New(env, std::string("replay spec: ") + name + " must hold strings");
    out.push_back(s.As<Napi::String>().Utf8Value());
  }
  return out;
}

// The plain-text predicate's spec (the scanner's `plain`, and the replayPlainText test hook's argument).
ReplayPlainSpec PlainSpecFromJs(Napi::Env env, const Napi::Object& po) {
  ReplayPlainSpec spec;
  Napi::Value unsafe = po.Get("unsafeChars");
  if (!unsafe.IsString()) throw Napi::TypeError::New(env, "replay spec: plain.unsafeChars must be a string");
  spec.unsafeChars = unsafe.As<Napi::String>().Utf8Value();
  spec.shapeWords = LiteralSet(Strings(env, po, "shapeWords"));
  spec.secretWords = LiteralSet(Strings(env, po, "secretWords"));
  spec.programHints = LiteralSet(Strings(env, po, "programHints"));
  spec.programs = Strings(env, po, "programs");
  return spec;
}

class ReplayEventScanner : public Napi::ObjectWrap<ReplayEventScanner> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ReplayEventScanner",
                       {InstanceMethod("push", &ReplayEventScanner::PushJs), InstanceMethod("endFile", &ReplayEventScanner::EndFileJs),
                        InstanceMethod("flush", &ReplayEventScanner::FlushJs), InstanceMethod("stats", &ReplayEventScanner::StatsJs)});
  }

  explicit ReplayEventScanner(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReplayEventScanner>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "ReplayEventScanner needs a spec object");
    Napi::Object o = info[0].As<Napi::Object>();
    auto spec = std::make_shared<ReplaySpec>();
    Napi::Value types = o.Get("typeNumbers");
    if (!types.IsArray()) throw Napi::TypeError::New(env, "replay spec: typeNumbers must be an array of [name, number]");
    Napi::Array ta = types.As<Napi::Array>();
    for (uint32_t i = 0; i < ta.Length(); i++) {
      Napi::Value pair = ta.Get(i);
      if (!pair.IsArray()) throw Napi::TypeError::New(env, "replay spec: typeNumbers[] must be [name, number]");
      Napi::Array p = pair.As<Napi::Array>();
      Napi::Value name = p.Get(0u), num = p.Get(1u);
      if (!name.IsString() || !num.IsNumber()) throw Napi::TypeError::New(env, "replay spec: typeNumbers[] must be [name, number]");
      spec->typeNumbers[name.As<Napi::String>().Utf8Value()] = num.As<Napi::Number>().Uint32Value();
    }
    spec->x86_64Syscalls = Strings(env, o, "x86_64Syscalls");
    Napi::Value plain = o.Get("plain");
    if (!plain.IsObject()) throw Napi::TypeError::New(env, "replay spec: plain must be an object");
    spec->plain = PlainSpecFromJs(env, plain.As<Napi::Object>());
    Napi::Value lookup = o.Get("lookupType");
    if (!lookup.IsFunction()) throw Napi::TypeError::New(env, "replay spec: lookupType must be a function");
    lookup_ = Napi::Persistent(lookup.As<Napi::Function>());
    // A type name the table does not know (UNKNOWN[n], a newer auditd): rare, asked of TypeScript's
    // recordTypeNumber so the answer is the same whatever the spelling.
    spec->lookupType = [this, env](const char* name, size_t len) -> uint32_t {
      Napi::Value r = lookup_.Call({Napi::Buffer<char>::Copy(env, name, len)});
      return r.IsNumber() ? r.As<Napi::Number>().Uint32Value() : 0;
    };
    scanner_ = std::make_unique<ReplayEvents>(spec, ReplayEvents::Options{});
    // Findings mode: a triage spec (src/detect/triage-spec.ts) as the second argument.
    if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
      auto triage = std::make_unique<Triage>();
      Batch unused;
      triage->SetSpec(TriageSpecFromJs(env, info[1]), &unused);
      scanner_->SetTriage(std::move(triage));
    }
  }

 private:
  Napi::Value PushJs(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(info.Env(), "push needs a Buffer");
    Napi::Buffer<char> b = info[0].As<Napi::Buffer<char>>();
    out_.Clear();
    scanner_->Push(b.Data(), b.Length(), &out_);
    return Result(info, 1);
  }
  Napi::Value EndFileJs(const Napi::CallbackInfo& info) {
    out_.Clear();
    scanner_->EndFile(&out_);
    return Result(info, 0);
  }
  Napi::Value FlushJs(const Napi::CallbackInfo& info) {
    out_.Clear();
    scanner_->Flush(&out_);
    return Result(info, 0);
  }
  Napi::Value StatsJs(const Napi::CallbackInfo& info) {
    const ReplayStats& s = scanner_->stats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("bytes", static_cast<double>(s.bytes));
    o.Set("lines", static_cast<double>(s.lines));
    o.Set("overlongLines", static_cast<double>(s.overlongLines));
    o.Set("records", static_cast<double>(s.records));
    o.Set("events", static_cast<double>(s.events));
    o.Set("incomplete", static_cast<double>(s.incomplete));
    o.Set("evicted", static_cast<double>(s.evicted));
    o.Set("parseErrors", static_cast<double>(s.parseErrors));
    o.Set("lateRecords", static_cast<double>(s.lateRecords));
    o.Set("serialGaps", s.serialGaps);
    o.Set("native", static_cast<double>(s.native));
    o.Set("fallback", static_cast<double>(s.fallback));
    o.Set("noted", static_cast<double>(s.noted));
    o.Set("repeats", static_cast<double>(s.repeats));
    o.Set("notesAgain", static_cast<double>(s.notesAgain));
    const RepeatStats& rs = scanner_->repeatStats();
    o.Set("repeatTemplates", static_cast<double>(rs.templates));
    o.Set("repeatEvictions", static_cast<double>(rs.evictions));
    o.Set("repeatSkipped", static_cast<double>(rs.skipped));
    if (const Triage* t = scanner_->triage()) {
      const TriageStats& ts = t->stats();
      o.Set("triagePassed", static_cast<double>(ts.passed));
      o.Set("triageUnsure", static_cast<double>(ts.unsure));
    }
    return o;
  }

  // `targetArg`: the index of the optional target Buffer among the call's arguments.
  Napi::Value Result(const Napi::CallbackInfo& info, size_t targetArg) {
    Napi::Env env = info.Env();
    Napi::Array r = Napi::Array::New(env, 5);
    if (info.Length() > targetArg && info[targetArg].IsBuffer() && info[targetArg].As<Napi::Buffer<char>>().Length() >= out_.out.size()) {
      std::memcpy(info[targetArg].As<Napi::Buffer<char>>().Data(), out_.out.data(), out_.out.size());
      r.Set(0u, Napi::Number::New(env, static_cast<double>(out_.out.size())));
    } else {
      r.Set(0u, Napi::Buffer<char>::Copy(env, out_.out.data(), out_.out.size()));
    }
    if (out_.fallbacks.empty()) {
      r.Set(1u, env.Null());
      r.Set(2u, env.Null());
    } else {
      r.Set(1u, Napi::Buffer<char>::Copy(env, out_.fallbackBytes.data(), out_.fallbackBytes.size()));
      size_t n = 0;
      for (const auto& f : out_.fallbacks) n += 3 + 2 * f.recordCount;
      Napi::Uint32Array meta = Napi::Uint32Array::New(env, n);
      size_t k = 0;
      for (const auto& f : out_.fallbacks) {
        meta[k++] = static_cast<uint32_t>(f.outOffset);
        meta[k++] = f.incomplete ? 1 : 0;
        meta[k++] = f.recordCount;
        for (uint32_t i = 0; i < f.recordCount; i++) {
          const auto& rec = out_.fallbackRecords[f.firstRecord + i];
          meta[k++] = rec.first;
          meta[k++] = rec.second;
        }
      }
      r.Set(2u, meta);
    }
    Napi::Array failures = Napi::Array::New(env, out_.failures.size());
    for (size_t i = 0; i < out_.failures.size(); i++) {
      Napi::Array f = Napi::Array::New(env, 2);
      f.Set(0u, Napi::String::New(env, out_.failures[i].reason));
      f.Set(1u, Napi::Buffer<char>::Copy(env, out_.failures[i].text.data(), out_.failures[i].text.size()));
      failures.Set(static_cast<uint32_t>(i), f);
    }
    r.Set(3u, failures);
    if (out_.noteEnds.empty()) {
      r.Set(4u, env.Null());
    } else {
      Napi::Uint32Array ends = Napi::Uint32Array::New(env, out_.noteEnds.size());
      for (size_t i = 0; i < out_.noteEnds.size(); i++) ends[i] = out_.noteEnds[i];
      r.Set(4u, ends);
    }
    return r;
  }

  std::unique_ptr<ReplayEvents> scanner_;
  Napi::FunctionReference lookup_;
  ReplayOutput out_;
};

// replayPlainText(plainSpec, text: Buffer) -> boolean: the predicate on its own, for the tests that
// hold it against redactText.
Napi::Value ReplayPlainTextJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsBuffer()) throw Napi::TypeError::New(env, "replayPlainText(plain, Buffer)");
  const ReplayPlainSpec spec = PlainSpecFromJs(env, info[0].As<Napi::Object>());
  Napi::Buffer<char> b = info[1].As<Napi::Buffer<char>>();
  return Napi::Boolean::New(env, ReplayPlainText(spec, std::string_view(b.Data(), b.Length())));
}

}  // namespace

void RegisterReplayEvents(Napi::Env env, Napi::Object exports) {
  exports.Set("ReplayEventScanner", ReplayEventScanner::Define(env));
  exports.Set("replayPlainText", Napi::Function::New(env, ReplayPlainTextJs, "replayPlainText"));
}

}  // namespace credwatch
