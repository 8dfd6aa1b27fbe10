#include "audit_socket.h"

#include <linux/audit.h>
#include <linux/netlink.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "control.h"
#include "errors.h"
#include "text.h"
#include "triage_js.h"

namespace credwatch {

namespace {

uint32_t OptionalCount(const Napi::Object& opts, const char* name, uint32_t fallback, uint32_t max) {
  Napi::Value v = opts.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(opts.Env(), std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= max) || d != static_cast<double>(static_cast<uint32_t>(d))) {
    throw Napi::RangeError::New(opts.Env(),
                                std::string(name) + " must be an integer from 1 to " + std::to_string(max));
  }
  return static_cast<uint32_t>(d);
}

Napi::FunctionReference OptionalFunction(const Napi::Object& opts, const char* name) {
  Napi::Value v = opts.Get(name);
  if (v.IsUndefined() || v.IsNull()) return Napi::FunctionReference();
  if (!v.IsFunction()) throw Napi::TypeError::New(opts.Env(), std::string(name) + " must be a function");
  return Napi::Persistent(v.As<Napi::Function>());
}

struct StartupCapture {
  Batch* batch;
  Counters* counters;
};

// Records that reach the reading socket while AUDIT_SET pid is being acknowledged belong to the stream.
void CaptureStartupRecord(void* ctx, const nlmsghdr* nlh, size_t len) {
  auto* capture = static_cast<StartupCapture*>(ctx);
  if (nlh->nlmsg_type < NLMSG_MIN_TYPE) {
    capture->counters->ignored.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const char* text = reinterpret_cast<const char*>(nlh) + NLMSG_HDRLEN;
  size_t textLen = len - NLMSG_HDRLEN;
  while (textLen > 0 && text[textLen - 1] == '\0') textLen--;
  capture->counters->received.fetch_add(1, std::memory_order_relaxed);
  capture->counters->bytes.fetch_add(len, std::memory_order_relaxed);
  capture->batch->Append(nlh->nlmsg_type, text, textLen);
}

}  // namespace

Napi::Function AuditSocket::Define(Napi::Env env) {
  return DefineClass(env, "AuditSocket",
                     {
                         InstanceMethod<&AuditSocket::Start>("start"),
                         InstanceMethod<&AuditSocket::Close>("close"),
                         InstanceMethod<&AuditSocket::GetCounters>("getCounters"),
                         InstanceMethod<&AuditSocket::RefMethod>("ref"),
                         InstanceMethod<&AuditSocket::UnrefMethod>("unref"),
                         InstanceMethod<&AuditSocket::PortId>("portId"),
                         InstanceMethod<&AuditSocket::SetTriage>("setTriage"),
                     });
}

AuditSocket::AuditSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AuditSocket>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 1 || !info[0].IsObject()) {
    throw Napi::TypeError::New(env, "AuditSocket needs an options object");
  }
  Napi::Object opts = info[0].As<Napi::Object>();
  Napi::Value mode = opts.Get("mode");
  std::string modeName = mode.IsString() ? mode.As<Napi::String>().Utf8Value() : "";
  if (modeName == "multicast") {
    multicast_ = true;
  } else if (modeName != "unicast") {
    throw Napi::TypeError::New(env, "mode must be 'unicast' or 'multicast'");
  }
  queueLimit_ = OptionalCount(opts, "queueLimit", 64, 65536);
  batchMaxRecords_ = OptionalCount(opts, "batchMaxRecords", 256, 65536);
  receiveBuffer_ = static_cast<int>(OptionalCount(opts, "receiveBuffer", 4 << 20, 1u << 30));
  Napi::Value overflow = opts.Get("overflow");
  std::string overflowName = overflow.IsString() ? overflow.As<Napi::String>().Utf8Value() : "drop";
  if (overflowName == "block") {
    blockWhenFull_ = true;
  } else if (overflowName != "drop") {
    throw Napi::TypeError::New(env, "overflow must be 'drop' or 'block'");
  }
  Napi::Value procSnapshots = opts.Get("procSnapshots");
  if (!procSnapshots.IsUndefined()) {
    if (!procSnapshots.IsBoolean()) throw Napi::TypeError::New(env, "procSnapshots must be a boolean");
    procSnapshots_ = procSnapshots.As<Napi::Boolean>().Value();
  }
  Napi::Value onBatch = opts.Get("onBatch");
  if (!onBatch.IsFunction()) throw Napi::TypeError::New(env, "onBatch must be a function");
  onBatch_ = Napi::Persistent(onBatch.As<Napi::Function>());
  onError_ = OptionalFunction(opts, "onError");
  onClosed_ = OptionalFunction(opts, "onClosed");
  pool_.SetMaxFree(queueLimit_ + 2);
}

AuditSocket::~AuditSocket() {
  // Normally already shut down: a running socket holds a reference to itself until its TSFN is
  // finalized. This covers environment teardown, where the TSFN belongs to Node's own cleanup.
  reader_.Stop();
  CloseFds();
}

void AuditSocket::CloseFds() {
  if (fd_ >= 0) close(fd_);
  if (wakeFd_ >= 0) close(wakeFd_);
  fd_ = -1;
  wakeFd_ = -1;
}

void AuditSocket::RegisterAsDaemon(Batch* first) {
  // The kernel sends unicast records to the port id of the socket that sent AUDIT_SET with the pid
  // (auditd_set(..., NETLINK_CB(skb).portid, ...)), so this request must leave from the reading socket.
  // Verified on 6.18: with three sockets in one process, the one that set the pid got every record and
  // the others none; clearing the pid (pid=0) is accepted from any socket of the same process, which
  // is how NetlinkSource.stop() releases it through the control path.
  audit_status s{};
  s.mask = AUDIT_STATUS_PID;
  s.pid = static_cast<uint32_t>(getpid());
  uint32_t seq = NextRequestSeq();
  SendAuditRequest(fd_, AUDIT_SET, NLM_F_REQUEST | NLM_F_ACK, seq, &s, sizeof(s));
  StartupCapture capture{first, &counters_};
  WaitAck(fd_, seq, "AUDIT_SET", "pid", CaptureStartupRecord, &capture);
}

Napi::Value AuditSocket::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kIdle) {
    throw Napi::Error::New(env, state_ == State::kRunning ? "AuditSocket is already started"
                                                          : "AuditSocket is closed");
  }
  Batch* first = pool_.Take();
  try {
    fd_ = OpenAuditSocket(multicast_ ? (1u << (AUDIT_NLGRP_READLOG - 1)) : 0);
    // A large receive buffer absorbs bursts while the thread is descheduled. FORCE works for root
    // past rmem_max; otherwise the ordinary option is capped by the kernel. Neither is fatal.
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &receiveBuffer_, sizeof(receiveBuffer_)) < 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receiveBuffer_, sizeof(receiveBuffer_));
    }
    sockaddr_nl self{};
    socklen_t selfLen = sizeof(self);
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&self), &selfLen) == 0) portId_ = self.nl_pid;
    wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakeFd_ < 0) throw SysError{"eventfd", errno, nullptr};
    if (!multicast_) RegisterAsDaemon(first);
  } catch (const SysError& e) {
    pool_.Give(first);
    CloseFds();
    ThrowAuditError(env, e);
  }
  try {
    tsfn_ = BatchTsfn::New(env, onBatch_.Value(), "credwatch:audit-reader", queueLimit_, 1, this,
                           OnTsfnFinalized, static_cast<void*>(nullptr));
  } catch (...) {
    pool_.Give(first);
    CloseFds();
    throw;
  }
  if (!tsfnRefed_) tsfn_.Unref(env);
  Ref();  // keep this object alive while the thread may deliver to it; dropped in OnTsfnFinalized
  state_ = State::kRunning;
  // Registered after the TSFN so that it runs before Node's own TSFN cleanup at teardown.
  if (napi_add_env_cleanup_hook(env, OnEnvCleanup, this) == napi_ok) cleanupHookAdded_ = true;
  reader_.Start(fd_, wakeFd_, batchMaxRecords_, &counters_, &pool_, this, first, blockWhenFull_, procSnapshots_);
  return env.Undefined();
}

void AuditSocket::Shutdown() {
  if (state_ == State::kRunning) {
    reader_.Stop();
    if (cleanupHookAdded_) {
      napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
      cleanupHookAdded_ = false;
    }
    // Release, not abort: batches already queued are still delivered, then the finalizer runs.
    tsfn_.Release();
  }
  CloseFds();
  state_ = State::kClosed;
}

void AuditSocket::OnEnvCleanup(void* arg) {
  auto* self = static_cast<AuditSocket*>(arg);
  self->cleanupHookAdded_ = false;  // a hook must not remove itself while running
  self->Shutdown();
}

void AuditSocket::OnTsfnFinalized(Napi::Env env, void* /*data*/, AuditSocket* self) {
  if (!self->onClosed_.IsEmpty()) {
    try {
      self->onClosed_.Call({});
    } catch (const Napi::Error& e) {
      self->ReportJsError(env, e.Value());
    }
  }
  self->Unref();
}

Napi::Value AuditSocket::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  return info.Env().Undefined();
}

SubmitResult AuditSocket::Submit(Batch* batch) {
  counters_.queued.fetch_add(1, std::memory_order_relaxed);
  napi_status status = tsfn_.NonBlockingCall(batch);
  if (status == napi_ok) return SubmitResult::kAccepted;
  counters_.queued.fetch_sub(1, std::memory_order_relaxed);
  return status == napi_queue_full ? SubmitResult::kFull : SubmitResult::kClosing;
}

void AuditSocket::ReportJsError(Napi::Env env, Napi::Value error) {
  if (!onError_.IsEmpty()) {
    try {
      onError_.Call({error});
      return;
    } catch (const Napi::Error& e) {
      error = e.Value();
    }
  }
  napi_fatal_exception(env, error);  // becomes 'uncaughtException', as an unhandled 'error' event would
}

void DeliverToJs(Napi::Env env, Napi::Function onBatch, AuditSocket* self, Batch* batch) {
  self->counters_.queued.fetch_sub(1, std::memory_order_relaxed);
  if (env == nullptr) {
    // The environment is being torn down with this batch still queued: it can no longer be delivered.
    if (!batch->isError) {
      self->counters_.queueDrops.fetch_add(batch->RecordCount(), std::memory_order_relaxed);
    }
    self->pool_.Give(batch);
    return;
  }
  Napi::HandleScope scope(env);
  if (batch->isError) {
    SysError e = batch->error;
    self->pool_.Give(batch);
    self->ReportJsError(env, MakeAuditError(env, e));
    return;
  }
  // Two parallel arrays, not an object per record: napi_create_object plus two napi_set_property per
  // record were ~0.4 us each on the JavaScript thread (V8's slow path for a fresh object's first
  // properties); binding.ts builds the { type, text } objects in JavaScript, where they cost ~10 ns.
  const size_t n = batch->records.size();
  Napi::Uint32Array types = Napi::Uint32Array::New(env, n);
  Napi::Array texts = Napi::Array::New(env, n);
  uint32_t* typeAt = types.Data();
  for (size_t i = 0; i < n; i++) {
    const RecordRef& r = batch->records[i];
    typeAt[i] = r.type;
    texts.Set(static_cast<uint32_t>(i), Napi::Value(env, MakeRecordString(env, batch->bytes.data() + r.offset, r.length,
                                                                          self->scratch_)));
  }
  self->counters_.delivered.fetch_add(batch->RecordCount(), std::memory_order_relaxed);
  self->pool_.Give(batch);
  try {
    onBatch.Call({types, texts});
  } catch (const Napi::Error& e) {
    self->ReportJsError(env, e.Value());
  }
}

Napi::Value AuditSocket::GetCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  auto put = [&](const char* name, double v) { o.Set(name, Napi::Number::New(env, v)); };
  put("received", static_cast<double>(counters_.received.load()));
  put("bytes", static_cast<double>(counters_.bytes.load()));
  put("batches", static_cast<double>(counters_.batches.load()));
  put("delivered", static_cast<double>(counters_.delivered.load()));
  put("queueDrops", static_cast<double>(counters_.queueDrops.load()));
  put("enobufs", static_cast<double>(counters_.enobufs.load()));
  put("truncated", static_cast<double>(counters_.truncated.load()));
  put("badSender", static_cast<double>(counters_.badSender.load()));
  put("ignored", static_cast<double>(counters_.ignored.load()));
  put("queued", static_cast<double>(counters_.queued.load()));
  put("queueWaits", static_cast<double>(counters_.queueWaits.load()));
  put("summarized", static_cast<double>(counters_.summarized.load()));
  put("summarizedRecords", static_cast<double>(counters_.summarizedRecords.load()));
  put("triagePassed", static_cast<double>(counters_.triagePassed.load()));
  put("triageUnsure", static_cast<double>(counters_.triageUnsure.load()));
  put("triageExpired", static_cast<double>(counters_.triageExpired.load()));
  put("procSnapshots", static_cast<double>(counters_.procSnapshots.load()));
  put("repeatNotes", static_cast<double>(counters_.repeatNotes.load()));
  put("repeatTemplates", static_cast<double>(counters_.repeatTemplates.load()));
  put("repeatEvictions", static_cast<double>(counters_.repeatEvictions.load()));
  put("repeatSkipped", static_cast<double>(counters_.repeatSkipped.load()));
  return o;
}

Napi::Value AuditSocket::RefMethod(const Napi::CallbackInfo& info) {
  tsfnRefed_ = true;
  if (state_ == State::kRunning) tsfn_.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value AuditSocket::UnrefMethod(const Napi::CallbackInfo& info) {
  tsfnRefed_ = false;
  if (state_ == State::kRunning) tsfn_.Unref(info.Env());
  return info.Env().Undefined();
}

// setTriage(spec | null): takes effect on the reader's next record, running or not yet started.
Napi::Value AuditSocket::SetTriage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<const TriageSpec> spec;
  if (info.Length() >= 1 && !info[0].IsNull() && !info[0].IsUndefined()) spec = TriageSpecFromJs(env, info[0]);
  reader_.SetTriageSpec(std::move(spec));
  return env.Undefined();
}

Napi::Value AuditSocket::PortId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), portId_);
}

}  // namespace credwatch
