// TriageSpec from the JavaScript object src/native/binding.ts validated (src/detect/triage-spec.ts
// TriageSpec plus the syscall numbers), and the test hook that runs the triage on given records.
#pragma once

#include <napi.h>

#include <memory>

#include "triage.h"

namespace credwatch {

// Throws a TypeError naming the field on a malformed spec.
std::shared_ptr<const TriageSpec> TriageSpecFromJs(Napi::Env env, Napi::Value value);

// triageRecords(spec, records: {type, text}[]) -> {items: {type, text, count}[], stats}:
// runs one Triage over the records (no /proc, no socket) and returns what would go to JavaScript,
// after releasing whatever is still held. Lets tests check the C++ verdicts against real fixtures.
Napi::Value TriageRecordsJs(const Napi::CallbackInfo& info);

}  // namespace credwatch
