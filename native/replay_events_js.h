// Registers ReplayEventScanner and replayPlainText (native/replay_events_js.cc) on the addon's exports.
#pragma once

#include <napi.h>

namespace credwatch {

void RegisterReplayEvents(Napi::Env env, Napi::Object exports);

}  // namespace credwatch
