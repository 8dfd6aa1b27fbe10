#include "triage_js.h"

#include <string>
#include <vector>

#include "text.h"

namespace credwatch {

namespace {

std::vector<std::string> StringList(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string("triage spec: ") + name + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value s = a.Get(i);
    if (!s.IsString()) throw Napi::TypeError::New(env, std::string("triage spec: ") + name + " must hold strings");
    out.push_back(s.As<Napi::String>().Utf8Value());
  }
  return out;
}

bool Flag(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsBoolean()) throw Napi::TypeError::New(env, std::string("triage spec: ") + name + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

double Number(Napi::Env env, const Napi::Value& v, const char* what, double max) {
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::TypeError::New(env, std::string("triage spec: ") + what + " must be an integer 0.." + std::to_string(static_cast<uint64_t>(max)));
  }
  return d;
}

}  // namespace

std::shared_ptr<const TriageSpec> TriageSpecFromJs(Napi::Env env, Napi::Value value) {
  if (!value.IsObject()) throw Napi::TypeError::New(env, "triage spec must be an object");
  Napi::Object o = value.As<Napi::Object>();
  auto spec = std::make_shared<TriageSpec>();
  Napi::Value sys = o.Get("syscalls");
  if (!sys.IsArray()) throw Napi::TypeError::New(env, "triage spec: syscalls must be an array");
  Napi::Array list = sys.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value item = list.Get(i);
    if (!item.IsObject()) throw Napi::TypeError::New(env, "triage spec: syscalls[] must be objects");
    Napi::Object s = item.As<Napi::Object>();
    Napi::Value kind = s.Get("kind");
    std::string k = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : "";
    if (k != "exec" && k != "connect" && k != "open") throw Napi::TypeError::New(env, "triage spec: syscalls[].kind must be 'exec', 'connect' or 'open'");
    spec->syscalls.push_back(TriageSpec::Syscall{static_cast<uint32_t>(Number(env, s.Get("arch"), "syscalls[].arch", 4294967295.0)),
                                                 static_cast<uint32_t>(Number(env, s.Get("nr"), "syscalls[].nr", 65535)),
                                                 k == "exec" ? TriageKind::kExec : k == "connect" ? TriageKind::kConnect : TriageKind::kOpen});
  }
  spec->execPrograms = StringList(env, o, "execPrograms");
  spec->execExes = StringList(env, o, "execExes");
  spec->execArgvLiterals = LiteralSet(StringList(env, o, "execArgvLiterals"));
  spec->execAll = Flag(env, o, "execAll");
  spec->connectExes = StringList(env, o, "connectExes");
  Napi::Value ports = o.Get("connectPorts");
  if (!ports.IsArray()) throw Napi::TypeError::New(env, "triage spec: connectPorts must be an array");
  Napi::Array pa = ports.As<Napi::Array>();
  for (uint32_t i = 0; i < pa.Length(); i++) {
    spec->connectPorts.set(static_cast<size_t>(Number(env, pa.Get(i), "connectPorts[]", 65535)));
  }
  spec->connectUnixLiterals = LiteralSet(StringList(env, o, "connectUnixLiterals"));
  spec->connectUnixAll = Flag(env, o, "connectUnixAll");
  spec->connectInet4Literals = LiteralSet(StringList(env, o, "connectInet4Literals"));
  spec->connectInet4All = Flag(env, o, "connectInet4All");
  spec->connectInet6All = Flag(env, o, "connectInet6All");
  spec->connectAll = Flag(env, o, "connectAll");
  // Optional (absent: off), so a spec built before repeat collapse existed keeps its meaning.
  Napi::Value repeats = o.Get("repeats");
  if (!repeats.IsUndefined()) spec->repeats = Flag(env, o, "repeats");
  // Optional (replay only): without them no open syscall is in `syscalls` either.
  if (!o.Get("openAll").IsUndefined()) {
    spec->openAll = Flag(env, o, "openAll");
    spec->openPathLiterals = LiteralSet(StringList(env, o, "openPathLiterals"));
    spec->openObjectKeys = StringList(env, o, "openObjectKeys");
  }
  return spec;
}

Napi::Value TriageRecordsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "triageRecords(spec, records[])");
  Triage triage;
  Batch out;
  triage.SetSpec(TriageSpecFromJs(env, info[0]), &out);
  Napi::Array records = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < records.Length(); i++) {
    Napi::Value rv = records.Get(i);
    if (!rv.IsObject()) throw Napi::TypeError::New(env, "records[] must be {type, text} objects");
    Napi::Object r = rv.As<Napi::Object>();
    uint32_t type = static_cast<uint32_t>(Number(env, r.Get("type"), "records[].type", 65535));
    Napi::Value tv = r.Get("text");
    if (!tv.IsString()) throw Napi::TypeError::New(env, "records[].text must be a string");
    std::string bytes = tv.As<Napi::String>().Utf8Value();
    triage.Push(type, bytes.data(), bytes.size(), 0, &out);
  }
  triage.ReleaseAll(&out);
  Napi::Array result = Napi::Array::New(env, out.records.size());
  std::u16string scratch;
  for (size_t i = 0; i < out.records.size(); i++) {
    const RecordRef& ref = out.records[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", Napi::Number::New(env, ref.type));
    o.Set("text", Napi::Value(env, MakeRecordString(env, out.bytes.data() + ref.offset, ref.length, scratch)));
    o.Set("count", Napi::Number::New(env, ref.count));
    result.Set(static_cast<uint32_t>(i), o);
  }
  const TriageStats& s = triage.stats();
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("summarized", Napi::Number::New(env, static_cast<double>(s.summarized)));
  stats.Set("passed", Napi::Number::New(env, static_cast<double>(s.passed)));
  stats.Set("unsure", Napi::Number::New(env, static_cast<double>(s.unsure)));
  const RepeatStats& r = triage.repeatStats();
  stats.Set("repeatNotes", Napi::Number::New(env, static_cast<double>(r.hits)));
  stats.Set("repeatTemplates", Napi::Number::New(env, static_cast<double>(r.templates)));
  stats.Set("repeatEvictions", Napi::Number::New(env, static_cast<double>(r.evictions)));
  stats.Set("repeatSkipped", Napi::Number::New(env, static_cast<double>(r.skipped)));
  Napi::Object ret = Napi::Object::New(env);
  ret.Set("items", result);
  ret.Set("stats", stats);
  return ret;
}

}  // namespace credwatch
