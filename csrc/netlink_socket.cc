// NetlinkSocket: open(protocol), exchange(messages) -> Promise<{ replies, completed }>,
// cancel(), close().
//
// exchange() sends the given, fully encoded netlink messages one at a time, and after each
// one reads replies until the kernel has finished with it: the NLMSG_ERROR (acknowledgement
// or error) or NLMSG_DONE carrying that message's sequence number. It stops at the first
// message the kernel rejects, so `completed` says exactly how many messages took effect;
// TypeScript turns that into a precise partial-failure report. Sending one message at a time
// (rather than a burst) keeps the socket's receive queue from overflowing with acks and
// matches how the kernel processes generic-netlink and rtnetlink requests: synchronously, in
// sendmsg(). TypeScript checks every message before it gets here (lib/netlink/request.ts);
// this layer checks only what it needs to read the header.
//
// Waiting for an answer. The kernel does a request's work inside sendmsg() and queues the
// answer before sendmsg() returns; a dump's later parts are produced inside the recvmsg()
// that drains the queue. So when a wait begins, a kernel that will answer already has. The
// wait is a poll() with a timeout (per wait, not per call: it never measures the kernel's
// work) on the socket and on an eventfd. The eventfd is the cancel path: cancel() and close()
// write to it, and a wait that finds the socket empty then ends at once (ECANCELED). A wait
// that finds data reads it first, so a cancel never cuts off an answer that has arrived.
// A timed-out wait fails with ETIMEDOUT; the socket may then hold a late answer, so
// TypeScript replaces it.
//
// Threads. At most one exchange per socket is on the libuv pool at a time; the others wait
// on the JS thread in `waiting` (no pool thread ever blocks on a lock). Everything except
// the descriptors and `stopping` is touched only on the JS thread. The state is reference
// counted (the JS object, each exchange) on the JS thread, without std::shared_ptr: its
// atomics make libstdc++ reference glibc 2.32's __libc_single_threaded.
//
// Teardown. process.exit() joins the pool threads; TypeScript closes every socket from a
// process 'exit' listener first, which ends their waits. No env cleanup hook is registered:
// Node runs those only after the env's pending pool work has finished (a Worker terminated
// during a wait ends when the wait does, within the reply timeout), and by then the
// finalizer of each socket object closes its descriptors anyway.
//
// Replies may carry the interface private key (a WireGuard GET_DEVICE dump includes it for
// a caller with CAP_NET_ADMIN), so every native buffer that held reply or request bytes is
// wiped before it is released.
#include "netlink_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "errors.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

namespace jitguard {
namespace {

using Bytes = std::vector<uint8_t>;

void Wipe(Bytes& bytes) {
  if (!bytes.empty()) explicit_bzero(bytes.data(), bytes.size());
  bytes.clear();
}

class ExchangeWorker;

struct SocketState {
  int fd = -1;
  int wake_fd = -1;  // eventfd; readable once cancel() or close() was called
  int reply_timeout_ms = 0;
  // Where replies are read, used by one exchange at a time (exchanges on a socket never overlap)
  // and all zeros between them: each datagram is wiped as soon as it is copied out. One buffer
  // for the socket's life, because allocating, zeroing and wiping 64 KiB per exchange doubled
  // the time of a one-peer SET from C in the TCG test VM (0.36 ms plain, 0.53 ms with them).
  Bytes receive_buffer;
  // Set by close(): an exchange stops before its next message.
  std::atomic<bool> stopping{false};
  // JS thread only:
  int refs = 1;
  bool running = false;  // an exchange is on the thread pool
  bool close_requested = false;
  // Exchanges handed over while another runs, in call order (linked through `next_`; no
  // std::deque, whose allocator needs a newer libstdc++ than the addon targets).
  ExchangeWorker* waiting_first = nullptr;
  ExchangeWorker* waiting_last = nullptr;
};

void CloseDescriptors(SocketState* state) {
  if (state->fd >= 0) close(state->fd);
  if (state->wake_fd >= 0) close(state->wake_fd);
  state->fd = -1;
  state->wake_fd = -1;
}

void Release(SocketState* state) {
  if (--state->refs > 0) return;
  CloseDescriptors(state);
  Wipe(state->receive_buffer);
  delete state;
}

void Wake(SocketState* state) {
  if (state->wake_fd < 0) return;
  const uint64_t one = 1;
  // Nonblocking; can only fail if the counter is about to overflow, when it is readable anyway.
  ssize_t written = write(state->wake_fd, &one, sizeof(one));
  (void)written;
}

// Closes the descriptors now if no exchange needs them, else when the last one finishes.
void CloseWhenIdle(SocketState* state) {
  if (!state->running && state->waiting_first == nullptr) CloseDescriptors(state);
}

// Milliseconds left until `deadline` on CLOCK_MONOTONIC, at least 0.
int MillisecondsUntil(const timespec& deadline) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const int64_t ms = (static_cast<int64_t>(deadline.tv_sec) - now.tv_sec) * 1000 +
                     (static_cast<int64_t>(deadline.tv_nsec) - now.tv_nsec) / 1000000;
  return ms <= 0 ? 0 : static_cast<int>(ms);
}

// One exchange's work, on whichever thread runs it: sends the messages one at a time and reads
// each one's replies until its NLMSG_ERROR/NLMSG_DONE, stopping at the first rejection.
class ExchangeRun {
 public:
  // `first_reply_only`: a message is done once its first datagram is read (the head of a dump;
  // the socket then holds the rest of the dump and must be replaced).
  ExchangeRun(SocketState* state, std::vector<Bytes> messages, bool first_reply_only = false)
      : state_(state), messages_(std::move(messages)), first_reply_only_(first_reply_only) {}

  ~ExchangeRun() {
    for (Bytes& m : messages_) Wipe(m);
    for (Bytes& r : replies_) Wipe(r);
  }

  // `wait_ms`: how long one wait for an answer may take before the exchange fails (ETIMEDOUT).
  void Run(int wait_ms) {
    Bytes& buffer = state_->receive_buffer;
    if (buffer.size() < kReceiveBufferBytes) Grow(buffer, kReceiveBufferBytes);
    for (Bytes& message : messages_) {
      if (state_->stopping.load()) {
        Fail(ECANCELED, "sendmsg");
        break;
      }
      const auto* request = reinterpret_cast<const nlmsghdr*>(message.data());
      const uint32_t seq = request->nlmsg_seq;
      if (!SendAll(message)) break;
      Wipe(message);
      bool finished = false;
      bool rejected = false;
      while (!finished && errno_ == 0) {
        ssize_t size = ReceiveOne(buffer, wait_ms);
        if (size < 0) break;
        if (size == 0) continue;  // nothing after all (a spurious wake-up): wait again
        if (KeepIfOurs(buffer, static_cast<size_t>(size), seq, &finished, &rejected) &&
            !OnlyAcks(buffer, static_cast<size_t>(size), seq)) {
          replies_.emplace_back(buffer.begin(), buffer.begin() + size);
          if (first_reply_only_) finished = true;
        }
        explicit_bzero(buffer.data(), static_cast<size_t>(size));
      }
      if (errno_ != 0 || rejected) break;  // later messages are not sent: the caller learns `completed`
      completed_++;
    }
  }

  // On the JS thread: the result object, or throws the errno error (with `completed`).
  Napi::Object Result(Napi::Env env) {
    if (errno_ != 0) {
      Napi::Error error = ErrnoError(env, errno_, syscall_);
      error.Set("completed", Napi::Number::New(env, completed_));
      throw error;
    }
    // Each reply's memory goes to its JS Buffer as it is (freed when the Buffer is collected),
    // not copied: a dump of 10^5 peers is ~17 MB, and allocating, copying and wiping that here
    // held the event loop ~80 ms in the TCG bench VM. The JS side zeroes every reply that
    // can carry a key once decoded (lib/wireguard/client.ts), a few milliseconds at a time.
    Napi::Array replies = Napi::Array::New(env, replies_.size());
    std::vector<Bytes*> handed;
    handed.reserve(replies_.size());
    try {
      for (size_t i = 0; i < replies_.size(); i++) {
        Bytes* owned = new Bytes(std::move(replies_[i]));
        Napi::Buffer<uint8_t> buffer;
        try {
          buffer = Napi::Buffer<uint8_t>::New(env, owned->data(), owned->size(),
                                              [](Napi::Env, uint8_t*, Bytes* bytes) { delete bytes; }, owned);
        } catch (...) {
          Wipe(*owned);
          delete owned;
          throw;
        }
        handed.push_back(owned);
        replies.Set(i, buffer);
      }
    } catch (...) {
      // JS never sees the array: wipe what was handed over (its Buffers free it later).
      for (Bytes* owned : handed) explicit_bzero(owned->data(), owned->size());
      throw;
    }
    replies_.clear();
    Napi::Object result = Napi::Object::New(env);
    result.Set("replies", replies);
    result.Set("completed", Napi::Number::New(env, completed_));
    return result;
  }

 private:
  bool Fail(int err, const char* syscall) {
    errno_ = err;
    syscall_ = syscall;
    return false;
  }

  bool SendAll(const Bytes& message) {
    for (;;) {
      ssize_t n = send(state_->fd, message.data(), message.size(), 0);
      if (n >= 0) return true;
      if (errno != EINTR) return Fail(errno, "sendmsg");
    }
  }

  // Waits until the socket is readable (or has an error to report, which recv then reads).
  bool WaitReadable(int wait_ms) {
    timespec deadline{};
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += static_cast<long>(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
    for (;;) {
      pollfd fds[2] = {{state_->fd, POLLIN, 0}, {state_->wake_fd, POLLIN, 0}};
      const int ready = poll(fds, 2, MillisecondsUntil(deadline));
      if (ready < 0) {
        if (errno == EINTR) continue;
        return Fail(errno, "poll");
      }
      if (fds[0].revents != 0) return true;  // data first: a cancel never cuts off an answer
      if (fds[1].revents != 0) return Fail(ECANCELED, "poll");
      if (ready == 0 && MillisecondsUntil(deadline) == 0) return Fail(ETIMEDOUT, "poll");
    }
  }

  // Replies are read into a buffer this large, grown when a datagram is larger (the kernel
  // caps a dump's datagrams at 32 KiB, but rtnetlink may need more for an interface with many
  // virtual functions).
  static constexpr size_t kReceiveBufferBytes = 65536;

  // Replaces `buffer` by a larger one; the old one is wiped before it is freed.
  static void Grow(Bytes& buffer, size_t size) {
    Bytes larger(size);
    Wipe(buffer);
    buffer.swap(larger);
  }

  // Reads one datagram, growing `buffer` first if the pending datagram is larger. Returns its
  // size, 0 if there was nothing to read after all, -1 on failure (errno_ set).
  ssize_t ReceiveOne(Bytes& buffer, int wait_ms) {
    // The answer is usually queued already (the kernel queues it inside sendmsg), so the first
    // look does not wait: poll() and its deadline's two clock reads come only when the queue
    // is empty. (In the TCG test VM the clock is HPET, so each clock read is a system call.)
    bool waited = false;
    for (;;) {
      // Zero-length peek: the kernel reports the datagram's full length (MSG_TRUNC) without
      // copying any of it, so no reply bytes are left in a buffer that gets replaced.
      ssize_t pending = recv(state_->fd, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
      if (pending < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          if (waited) return 0;  // woken, yet nothing to read: the caller waits again
          if (!WaitReadable(wait_ms)) return -1;
          waited = true;
          continue;
        }
        Fail(errno, "recvmsg");
        return -1;
      }
      if (static_cast<size_t>(pending) > buffer.size()) Grow(buffer, static_cast<size_t>(pending));
      ssize_t n = recv(state_->fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        Fail(errno, "recvmsg");
        return -1;
      }
      return n;
    }
  }

  // Walks the messages of one datagram. Returns whether any belongs to the request with
  // sequence `seq` (datagrams left over from an earlier, aborted exchange are dropped), and
  // whether that request is now finished (DONE, or an ERROR which is an ack when error == 0).
  static bool KeepIfOurs(const Bytes& buffer, size_t size, uint32_t seq, bool* finished, bool* rejected) {
    bool ours = false;
    size_t offset = 0;
    while (offset + sizeof(nlmsghdr) <= size) {
      const auto* header = reinterpret_cast<const nlmsghdr*>(buffer.data() + offset);
      const size_t length = header->nlmsg_len;
      if (length < sizeof(nlmsghdr) || length > size - offset) break;
      if (header->nlmsg_seq == seq) {
        ours = true;
        if (header->nlmsg_type == NLMSG_DONE) {
          *finished = true;
        } else if (header->nlmsg_type == NLMSG_ERROR) {
          *finished = true;
          if (length >= NLMSG_LENGTH(sizeof(int))) {
            int error = 0;
            memcpy(&error, NLMSG_DATA(header), sizeof(error));
            if (error != 0) *rejected = true;
          }
        }
      }
      offset += NLMSG_ALIGN(length);
    }
    return ours;
  }

  // Whether the datagram holds nothing but acknowledgements (NLMSG_ERROR with error 0) of
  // request `seq`: those say no more than `completed` does, so they are not handed to
  // JavaScript, which saves a Buffer per message of every SET.
  static bool OnlyAcks(const Bytes& buffer, size_t size, uint32_t seq) {
    size_t offset = 0;
    while (offset + sizeof(nlmsghdr) <= size) {
      const auto* header = reinterpret_cast<const nlmsghdr*>(buffer.data() + offset);
      const size_t length = header->nlmsg_len;
      if (length < NLMSG_LENGTH(sizeof(int)) || length > size - offset) return false;
      if (header->nlmsg_seq != seq || header->nlmsg_type != NLMSG_ERROR) return false;
      int error = 0;
      memcpy(&error, NLMSG_DATA(header), sizeof(error));
      if (error != 0) return false;
      offset += NLMSG_ALIGN(length);
    }
    return offset > 0;
  }

  SocketState* state_;
  std::vector<Bytes> messages_;
  const bool first_reply_only_;
  std::vector<Bytes> replies_;
  uint32_t completed_ = 0;
  int errno_ = 0;
  const char* syscall_ = "";
};

class ExchangeWorker : public Napi::AsyncWorker {
 public:
  ExchangeWorker(Napi::Env env, Napi::Object owner, SocketState* state, std::vector<Bytes> messages)
      : Napi::AsyncWorker(env, "jitguard:netlink.exchange"),
        deferred_(Napi::Promise::Deferred::New(env)),
        owner_(Napi::Persistent(owner)),  // the socket object outlives its exchanges
        state_(state),
        exchange_(state, std::move(messages)) {
    state_->refs++;
  }

  ~ExchangeWorker() override { Release(state_); }

  Napi::Promise Promise() { return deferred_.Promise(); }

  // Runs this exchange now, or after the ones already started or waiting on this socket.
  void Start() {
    if (state_->running) {
      if (state_->waiting_last != nullptr) state_->waiting_last->next_ = this;
      else state_->waiting_first = this;
      state_->waiting_last = this;
      return;
    }
    state_->running = true;
    Queue();
  }

 protected:
  void Execute() override { exchange_.Run(state_->reply_timeout_ms); }

  void OnOK() override {
    Napi::Env env = Env();
    FinishOnJsThread();
    try {
      deferred_.Resolve(exchange_.Result(env));
    } catch (const Napi::Error& error) {
      deferred_.Reject(error.Value());
    }
  }

  void OnError(const Napi::Error& error) override {
    FinishOnJsThread();
    deferred_.Reject(error.Value());
  }

 private:
  void FinishOnJsThread() {
    state_->running = false;
    if (state_->waiting_first != nullptr) {
      ExchangeWorker* next = state_->waiting_first;
      state_->waiting_first = next->next_;
      if (state_->waiting_first == nullptr) state_->waiting_last = nullptr;
      state_->running = true;
      next->Queue();
    } else if (state_->close_requested) {
      CloseDescriptors(state_);
    }
  }

  ExchangeWorker* next_ = nullptr;  // in SocketState's waiting list
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  SocketState* state_;
  ExchangeRun exchange_;
};

// Creates a socket inside the network namespace at `netns_path` (e.g. /run/netns/gw), then
// returns the calling thread to its own namespace. A socket keeps the namespace it was created
// in for its whole life, so this is all it takes to manage WireGuard in another namespace.
// setns() affects only the calling (JS) thread, and only for these few system calls.
int SocketInNamespace(const std::string& netns_path, int protocol, int* failed_errno, const char** failed_call) {
  auto fail = [&](const char* call) {
    *failed_errno = errno;
    *failed_call = call;
    return -1;
  };
  if (netns_path.empty()) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    return fd < 0 ? fail("socket") : fd;
  }
  int target = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) return fail("open");
  int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original < 0) {
    const int err = errno;
    close(target);
    errno = err;
    return fail("open");
  }
  int fd = -1;
  if (setns(target, CLONE_NEWNET) < 0) {
    fail("setns");
  } else {
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) fail("socket");
    if (setns(original, CLONE_NEWNET) < 0) abort();  // cannot continue in the wrong namespace
  }
  close(target);
  close(original);
  return fd;
}

class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NetlinkSocket",
                       {InstanceMethod<&NetlinkSocket::Exchange>("exchange"),
                        InstanceMethod<&NetlinkSocket::ExchangeNow>("exchangeNow"),
                        InstanceMethod<&NetlinkSocket::Cancel>("cancel"),
                        InstanceMethod<&NetlinkSocket::Close>("close")});
  }

  // new NetlinkSocket(protocol: number, receiveBufferBytes: number, netnsPath: string,
  //                   replyTimeoutMs: number)   ('' for the caller's own namespace)
  explicit NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
    Napi::Env env = info.Env();
    const int protocol = info[0].As<Napi::Number>().Int32Value();
    const int receive_buffer = info[1].As<Napi::Number>().Int32Value();
    const std::string netns_path = info[2].As<Napi::String>().Utf8Value();
    const int reply_timeout_ms = info[3].As<Napi::Number>().Int32Value();
    state_ = new SocketState();
    state_->reply_timeout_ms = reply_timeout_ms;
    try {
      Open(env, protocol, receive_buffer, netns_path);
    } catch (...) {
      Release(state_);  // closes whatever was opened
      state_ = nullptr;
      throw;
    }
  }

  ~NetlinkSocket() override {
    if (state_ == nullptr) return;
    // Only the env's teardown can collect this object during an exchange (each exchange holds
    // a reference to it); then the exchange keeps the state alive and the descriptors open.
    state_->close_requested = true;
    CloseWhenIdle(state_);
    Release(state_);
  }

 private:
  void Open(Napi::Env env, int protocol, int receive_buffer, const std::string& netns_path) {
    int failed_errno = 0;
    const char* failed_call = "";
    state_->fd = SocketInNamespace(netns_path, protocol, &failed_errno, &failed_call);
    if (state_->fd < 0) throw ErrnoError(env, failed_errno, failed_call);
    const int fd = state_->fd;
    state_->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (state_->wake_fd < 0) throw ErrnoError(env, errno, "eventfd");
    const int one = 1;
    // Extended acks carry the kernel's own explanation of a rejection; capped acks keep an
    // error reply from echoing the whole request (which may hold keys) back to us.
    // NETLINK_CAP_ACK is required (Linux 4.3+): without it an error could echo keys back.
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one)) < 0) {
      throw ErrnoError(env, errno, "setsockopt");
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer, sizeof(receive_buffer)) < 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    }
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0) {
      throw ErrnoError(env, errno, "bind");
    }
  }

  // exchange(messages: Buffer[]): Promise<{ replies: Buffer[], completed: number }>
  Napi::Value Exchange(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (state_->fd < 0 || state_->close_requested) {
      throw ErrnoError(env, EBADF, "sendmsg");
    }
    std::vector<Bytes> messages = Messages(env, info[0]);
    auto* worker = new ExchangeWorker(env, info.This().As<Napi::Object>(), state_, std::move(messages));
    Napi::Promise promise = worker->Promise();
    worker->Start();
    return promise;
  }

  // exchangeNow(messages: Buffer[], firstReplyOnly?: boolean): { replies: Buffer[], completed: number }
  // The same exchange on the JS thread, without the two thread hops of the pool: for small
  // requests whose kernel work, done inside sendmsg(), costs less than those hops (a one-peer
  // WireGuard SET: ~0.5-1.7 ms in the test VM from C, against 6-13 ms through the pool). The
  // answer is queued before sendmsg() returns, so the wait finds it at once; one that does not
  // come within kNowWaitMs fails (ETIMEDOUT) instead of holding the event loop. Refused with
  // EBUSY while an exchange is on the pool (TypeScript queues its requests, so it never is).
  // With `firstReplyOnly`, each message is done at its first datagram: the head of a dump,
  // which the kernel builds inside sendmsg(); the rest stays queued, so the caller replaces
  // the socket.
  Napi::Value ExchangeNow(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (state_->fd < 0 || state_->close_requested) throw ErrnoError(env, EBADF, "sendmsg");
    if (state_->running || state_->waiting_first != nullptr) throw ErrnoError(env, EBUSY, "sendmsg");
    const bool first_reply_only = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    ExchangeRun exchange(state_, Messages(env, info[0]), first_reply_only);
    exchange.Run(std::min(state_->reply_timeout_ms, kNowWaitMs));
    return exchange.Result(env);
  }

  // cancel(): from now on, a wait for an answer that finds none ends at once (ECANCELED).
  // Exchanges go on: the kernel queues a real answer before the wait begins.
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    Wake(state_);
    return info.Env().Undefined();
  }

  // close(): idempotent. No new exchanges; those already handed over stop before their next
  // message (ECANCELED) and stop waiting; the descriptors close when the last one finishes.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (!state_->close_requested) {
      state_->close_requested = true;
      state_->stopping.store(true);
      Wake(state_);
      CloseWhenIdle(state_);
    }
    return info.Env().Undefined();
  }

  // Copies the messages out of JS memory; the one check this layer needs is that it can read a
  // header (the sequence number). Whether the kernel will answer is checked in TypeScript.
  static std::vector<Bytes> Messages(Napi::Env env, Napi::Value value) {
    Napi::Array array = value.As<Napi::Array>();
    std::vector<Bytes> messages;
    messages.reserve(array.Length());
    try {
      for (uint32_t i = 0; i < array.Length(); i++) {
        Napi::Uint8Array view = array.Get(i).As<Napi::Uint8Array>();
        if (view.ByteLength() < sizeof(nlmsghdr)) {
          throw Napi::TypeError::New(env, "netlink message shorter than its header");
        }
        messages.emplace_back(view.Data(), view.Data() + view.ByteLength());
      }
    } catch (...) {
      for (Bytes& m : messages) Wipe(m);
      throw;
    }
    return messages;
  }

  // How long exchangeNow waits for an answer the kernel should already have queued.
  static constexpr int kNowWaitMs = 100;

  SocketState* state_ = nullptr;
};

}  // namespace

void InitNetlinkSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("NetlinkSocket", NetlinkSocket::Define(env));
}

}  // namespace jitguard
