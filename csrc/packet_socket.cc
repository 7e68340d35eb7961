// PacketSocket: see packet_socket.h for the JavaScript surface.
//
// Opening order (each step before the next, so no unfiltered packet is ever queued):
//   1. socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), inside the requested
//      network namespace if one is given (setns() around socket() on the calling thread; a
//      socket keeps its namespace for life, and every later call on it, bind included,
//      happens there; interfaceIndex() resolves names in the same namespace beforehand). Protocol 0 means the socket is not hooked into the
//      receive path at all: it receives nothing until bind() names a protocol. So there is
//      nothing to drain between socket() and the filter, unlike the usual
//      socket(..., htons(ETH_P_ALL)) which starts queueing every frame at once.
//   2. SO_ATTACH_FILTER with the classic-BPF program built in TypeScript.
//   3. PACKET_IGNORE_OUTGOING, SO_RCVBUF(FORCE), SO_TIMESTAMPNS, PACKET_AUXDATA.
//   4. bind() with sll_protocol = htons(ETH_P_ALL) and the interface index (0: every
//      interface of the namespace). Only from here on does the kernel deliver, and every
//      packet it delivers has been through the filter.
// If anything after socket() fails, the constructor undoes all of it (descriptor, poll handle)
// before the exception leaves it: a half-built object never outlives its constructor.
//
// Reading: uv_poll on the non-blocking descriptor; each wake-up makes ONE recvmmsg() call for
// at most `batch` packets and delivers them in one JavaScript callback, as one Buffer (the
// packet bytes back to back) plus one Uint32Array of per-packet metadata. If more packets are
// queued, libuv's level-triggered poll wakes us again on the next loop iteration, after timers
// and other I/O have had their turn: a flood cannot starve the loop.
//
// Lengths: packet_rcv() trims a packet to the filter's return value before queueing it, so
// recvmmsg's MSG_TRUNC length is at most that snap length. The packet's real length (network
// header onwards, as the filter saw it) comes from PACKET_AUXDATA's tp_len, and so does the
// VLAN tag the stack took off the frame, if any.
//
// Why plain reads and not a PACKET_RX_RING (TPACKET_V3) ring: the filter accepts only
// handshake initiations, small (<= 216 bytes) and, even under attack, rate-limited by what a
// gateway can afford to verify; the copy recvmmsg makes is a few hundred bytes per packet and
// one syscall per batch. A V3 ring would pin megabytes per socket, deliver in blocks retired
// by a timeout (latency) or when full, and bring its own frame-status protocol; its advantage
// (no copy, no syscall per batch) matters for captures that pass floods of large frames, which
// this one is designed never to do. bench/capture.ts measures what plain reads deliver.
//
// Closing: uv_poll_stop() first (libuv removes the descriptor from epoll there), then a last
// PACKET_STATISTICS read, then close(2), then uv_close() whose callback only frees the handle
// memory. No JavaScript callback runs after close(): the flag is checked on every wake-up and
// the poll is no longer started.
//
// Errors: an error from the socket (the bound interface went down or was deleted: the kernel
// sets ENETDOWN on the socket; libuv reports POLLERR as a failed poll) is read with SO_ERROR,
// which clears it, and delivered to JavaScript as the callback's first argument; the poll
// stays stopped. TypeScript decides: close(), or resume() to keep reading (the kernel
// re-attaches the socket when the link comes back up; link() tells it when, bind() follows an
// interface that was deleted and created again).
#include "packet_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

namespace jitguard {
namespace {

// Per-packet metadata words in the Uint32Array handed to JavaScript.
constexpr uint32_t kMetaOffset = 0;    // byte offset of the packet in the data Buffer
constexpr uint32_t kMetaCaptured = 1;  // bytes present in the data Buffer
constexpr uint32_t kMetaLength = 2;    // length on the wire, network header onwards (tp_len)
constexpr uint32_t kMetaIfindex = 3;   // sockaddr_ll.sll_ifindex
constexpr uint32_t kMetaPkttype = 4;   // sockaddr_ll.sll_pkttype (PACKET_HOST = 0, ...)
constexpr uint32_t kMetaProtocol = 5;  // ethertype, host order (0x0800, 0x86dd)
constexpr uint32_t kMetaSeconds = 6;   // receive time (kernel SO_TIMESTAMPNS), CLOCK_REALTIME
constexpr uint32_t kMetaNanos = 7;
constexpr uint32_t kMetaVlan = 8;      // 0x10000 | TCI when the frame carried a VLAN tag, else 0
constexpr uint32_t kMetaStride = 9;

constexpr uint32_t kMaxBatch = 1024;
constexpr uint32_t kMaxSlot = 65536;

// Puts the calling thread into the network namespace at `path` for the scope's life ('' stays
// where it is). Only system calls run inside the scope, never JavaScript.
class NamespaceScope {
 public:
  explicit NamespaceScope(const std::string& path) {
    if (path.empty()) return;
    const int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      Fail("open");
      return;
    }
    original_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original_ < 0) {
      Fail("open");
    } else if (setns(target, CLONE_NEWNET) != 0) {
      Fail("setns");
      close(original_);
      original_ = -1;
    }
    close(target);
  }

  ~NamespaceScope() {
    if (original_ < 0) return;
    if (setns(original_, CLONE_NEWNET) != 0) abort();  // cannot go on in the wrong namespace
    close(original_);
  }

  NamespaceScope(const NamespaceScope&) = delete;
  NamespaceScope& operator=(const NamespaceScope&) = delete;

  bool ok() const { return error_ == 0; }
  int error() const { return error_; }
  const char* call() const { return call_; }

 private:
  void Fail(const char* call) {
    error_ = errno;
    call_ = call;
  }

  int original_ = -1;
  int error_ = 0;
  const char* call_ = "";
};

class PacketSocket;

// What the environment-cleanup hook holds: the socket, or null once the socket is gone. The
// socket removes the hook when it is destroyed; if that ever failed, the hook would still run
// at teardown, and finds null here instead of a freed socket.
struct CleanupLink {
  PacketSocket* socket;
};

class PacketSocket : public Napi::ObjectWrap<PacketSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PacketSocket",
                       {
                           InstanceMethod<&PacketSocket::JsRef>("ref"),
                           InstanceMethod<&PacketSocket::JsUnref>("unref"),
                           InstanceMethod<&PacketSocket::Stats>("stats"),
                           InstanceMethod<&PacketSocket::Pause>("pause"),
                           InstanceMethod<&PacketSocket::Resume>("resume"),
                           InstanceMethod<&PacketSocket::Link>("link"),
                           InstanceMethod<&PacketSocket::Rebind>("bind"),
                           InstanceMethod<&PacketSocket::Close>("close"),
                           InstanceAccessor<&PacketSocket::IsClosed>("closed"),
                           InstanceAccessor<&PacketSocket::BoundIndex>("ifindex"),
                           StaticMethod<&PacketSocket::InterfaceIndex>("interfaceIndex"),
                           StaticMethod<&PacketSocket::LocalAddresses>("localAddresses"),
                       });
  }

  explicit PacketSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PacketSocket>(info) {
    Napi::Env env = info.Env();
    // TypeScript validated everything; these checks only keep a direct caller from crashing.
    if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsFunction() ||
        !info[3].IsObject()) {
      throw Napi::TypeError::New(env, "PacketSocket(ifindex, filter, onPackets, options)");
    }
    const uint32_t ifindex = info[0].As<Napi::Number>().Uint32Value();
    Napi::Buffer<uint8_t> filter = info[1].As<Napi::Buffer<uint8_t>>();
    Napi::Object options = info[3].As<Napi::Object>();
    batch_ = NumberOption(options, "batch");
    slot_ = NumberOption(options, "slot");
    const uint32_t rcvbuf = NumberOption(options, "rcvbuf");
    const std::string netns = StringOption(options, "netns");
    const bool fail_after_open = options.Get("testFailAfterOpen").ToBoolean().Value();
    if (filter.Length() == 0 || filter.Length() % sizeof(sock_filter) != 0 ||
        filter.Length() / sizeof(sock_filter) > BPF_MAXINSNS) {
      throw Napi::TypeError::New(env, "filter: a whole number (1..4096) of 8-byte sock_filter entries");
    }
    if (batch_ == 0 || batch_ > kMaxBatch || slot_ == 0 || slot_ > kMaxSlot || rcvbuf > (1u << 30)) {
      throw Napi::TypeError::New(env, "options: batch 1..1024, slot 1..65536, rcvbuf <= 1 GiB");
    }

    // The program is copied (the kernel copies it too, in SO_ATTACH_FILTER), so its Buffer
    // may be reused by JavaScript at once.
    std::vector<sock_filter> program(filter.Length() / sizeof(sock_filter));
    memcpy(program.data(), filter.Data(), filter.Length());

    // Everything that touches JavaScript comes before the socket exists...
    callback_ = Napi::Persistent(info[2].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "jitguard:PacketSocket");
    // ...and whatever fails from here on is undone before the exception leaves: the C++
    // destructor does not run for an object whose constructor threw.
    try {
      Open(env, netns, ifindex, program, rcvbuf);
      if (fail_after_open) throw Napi::Error::New(env, "PacketSocket: failing after open, as the test asked");
      auto* link = new CleanupLink{this};
      if (napi_add_env_cleanup_hook(env, &PacketSocket::EnvCleanup, link) != napi_ok) {
        delete link;
        throw Napi::Error::New(env, "PacketSocket: napi_add_env_cleanup_hook failed");
      }
      cleanup_ = link;
    } catch (...) {
      CloseNow();
      throw;
    }
    // The socket keeps its JavaScript object alive while it is open: a capture that is being
    // read from must not be collected. close() drops this reference.
    Napi::ObjectWrap<PacketSocket>::Ref();
    referenced_ = true;
  }

  ~PacketSocket() override {
    CloseNow();
    DetachCleanupHook(Env());
  }

 private:
  static uint32_t NumberOption(const Napi::Object& options, const char* name) {
    Napi::Value value = options.Get(name);
    return value.IsNumber() ? value.As<Napi::Number>().Uint32Value() : 0;
  }

  static std::string StringOption(const Napi::Object& options, const char* name) {
    Napi::Value value = options.Get(name);
    return value.IsString() ? value.As<Napi::String>().Utf8Value() : std::string();
  }

  void Open(Napi::Env env, const std::string& netns, uint32_t ifindex, const std::vector<sock_filter>& program,
            uint32_t rcvbuf) {
    {
      NamespaceScope scope(netns);
      if (!scope.ok()) throw ErrnoError(env, scope.error(), scope.call());
      fd_ = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd_ < 0) {
        const int err = errno;
        fd_ = -1;
        throw ErrnoError(env, err, "socket");
      }
    }

    sock_fprog fprog{};
    fprog.len = static_cast<unsigned short>(program.size());
    fprog.filter = const_cast<sock_filter*>(program.data());
    if (setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) != 0) Fail(env, "setsockopt(SO_ATTACH_FILTER)");

    // Our own transmissions are never handshakes we receive; the kernel then does not even
    // clone them for us. ENOPROTOOPT (kernels before 4.20): the filter's pkttype test covers it.
    const int one = 1;
    if (setsockopt(fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) != 0 && errno != ENOPROTOOPT) {
      Fail(env, "setsockopt(PACKET_IGNORE_OUTGOING)");
    }
    if (rcvbuf > 0) {
      const int size = static_cast<int>(rcvbuf);
      // SO_RCVBUFFORCE exceeds net.core.rmem_max but needs CAP_NET_ADMIN; else the capped one.
      if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0 &&
          setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0) {
        Fail(env, "setsockopt(SO_RCVBUF)");
      }
    }
    if (setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0) Fail(env, "setsockopt(SO_TIMESTAMPNS)");
    if (setsockopt(fd_, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) != 0) Fail(env, "setsockopt(PACKET_AUXDATA)");

    if (BindTo(ifindex) != 0) Fail(env, "bind");

    // Receive state, allocated once.
    data_.resize(static_cast<size_t>(batch_) * slot_);
    iov_.resize(batch_);
    names_.resize(batch_);
    control_.resize(static_cast<size_t>(batch_) * kControlSize);
    messages_.resize(batch_);
    for (uint32_t i = 0; i < batch_; i++) {
      iov_[i].iov_base = data_.data() + static_cast<size_t>(i) * slot_;
      iov_[i].iov_len = slot_;
    }

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "PacketSocket: no event loop");
    }
    auto* poll = new uv_poll_t;
    int rc = uv_poll_init(loop, poll, fd_);
    if (rc != 0) {
      delete poll;
      throw ErrnoError(env, -rc, "uv_poll_init");
    }
    poll_ = poll;  // from here on CloseNow() owns it
    poll_->data = this;
    rc = uv_poll_start(poll_, UV_READABLE, &PacketSocket::OnPoll);
    if (rc != 0) throw ErrnoError(env, -rc, "uv_poll_start");
  }

  // Throws the errno error for `syscall`; the constructor's handler closes the descriptor.
  [[noreturn]] static void Fail(Napi::Env env, const char* syscall) { throw ErrnoError(env, errno, syscall); }

  // The interface index of `name` in the socket's namespace, or -errno.
  int IndexOf(const std::string& name) const {
    ifreq request{};
    memcpy(request.ifr_name, name.data(), name.size());
    if (ioctl(fd_, SIOCGIFINDEX, &request) != 0) return -errno;
    return request.ifr_ifindex;
  }

  int BindTo(uint32_t ifindex) {
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = static_cast<int>(ifindex);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return -1;
    ifindex_ = ifindex;
    return 0;
  }

  static void FreeHandle(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

  static void EnvCleanup(void* arg) {
    auto* link = static_cast<CleanupLink*>(arg);
    if (link->socket != nullptr) {
      link->socket->cleanup_ = nullptr;
      link->socket->CloseNow();
    }
    delete link;
  }

  void DetachCleanupHook(napi_env env) {
    if (cleanup_ == nullptr) return;
    if (napi_remove_env_cleanup_hook(env, &PacketSocket::EnvCleanup, cleanup_) == napi_ok) {
      delete cleanup_;
    } else {
      cleanup_->socket = nullptr;  // the hook still runs at teardown, and frees the link then
    }
    cleanup_ = nullptr;
  }

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<PacketSocket*>(handle->data);
    if (self == nullptr || self->fd_ < 0) return;
    if (status < 0) {
      // libuv stops the poll itself on POLLERR. Read (and clear) the socket's error.
      int err = 0;
      socklen_t length = sizeof(err);
      if (getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &length) != 0 || err == 0) err = -status;
      self->DeliverError(err, "poll");
      return;
    }
    self->Drain();
  }

  void Drain() {
    for (uint32_t i = 0; i < batch_; i++) {
      msghdr& header = messages_[i].msg_hdr;
      header.msg_name = &names_[i];
      header.msg_namelen = sizeof(sockaddr_ll);
      header.msg_iov = &iov_[i];
      header.msg_iovlen = 1;
      header.msg_control = control_.data() + static_cast<size_t>(i) * kControlSize;
      header.msg_controllen = kControlSize;
      header.msg_flags = 0;
      messages_[i].msg_len = 0;
    }
    int count = recvmmsg(fd_, messages_.data(), batch_, 0, nullptr);
    if (count < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      const int err = errno;
      uv_poll_stop(poll_);
      DeliverError(err, "recvmmsg");
      return;
    }
    if (count == 0) return;
    wakeups_with_packets_++;

    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    size_t total = 0;
    for (int i = 0; i < count; i++) total += messages_[i].msg_len;
    Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, total == 0 ? 1 : total);
    Napi::ArrayBuffer metaBuffer = Napi::ArrayBuffer::New(env, static_cast<size_t>(count) * kMetaStride * 4);
    auto* meta = static_cast<uint32_t*>(metaBuffer.Data());
    size_t offset = 0;
    for (int i = 0; i < count; i++) {
      const size_t captured = messages_[i].msg_len;  // without MSG_TRUNC: what is in the slot
      memcpy(data.Data() + offset, iov_[i].iov_base, captured);
      const Ancillary extra = ReadAncillary(messages_[i].msg_hdr);
      uint32_t* m = meta + static_cast<size_t>(i) * kMetaStride;
      m[kMetaOffset] = static_cast<uint32_t>(offset);
      m[kMetaCaptured] = static_cast<uint32_t>(captured);
      m[kMetaLength] = extra.has_length ? extra.length : static_cast<uint32_t>(captured);
      m[kMetaIfindex] = static_cast<uint32_t>(names_[i].sll_ifindex);
      m[kMetaPkttype] = names_[i].sll_pkttype;
      m[kMetaProtocol] = ntohs(names_[i].sll_protocol);
      m[kMetaSeconds] = static_cast<uint32_t>(extra.when.tv_sec);
      m[kMetaNanos] = static_cast<uint32_t>(extra.when.tv_nsec);
      m[kMetaVlan] = extra.vlan;
      offset += captured;
    }
    Napi::Uint32Array metaArray = Napi::Uint32Array::New(env, static_cast<size_t>(count) * kMetaStride, metaBuffer, 0);
    Call({env.Null(), data, metaArray});
  }

  struct Ancillary {
    timespec when{};
    bool has_length = false;
    uint32_t length = 0;
    uint32_t vlan = 0;
  };

  static Ancillary ReadAncillary(const msghdr& header) {
    Ancillary out;
    bool has_time = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&header), c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
        memcpy(&out.when, CMSG_DATA(c), sizeof(out.when));
        has_time = true;
      } else if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA &&
                 c->cmsg_len >= CMSG_LEN(sizeof(tpacket_auxdata))) {
        tpacket_auxdata aux;
        memcpy(&aux, CMSG_DATA(c), sizeof(aux));
        out.has_length = true;
        out.length = aux.tp_len;
        if ((aux.tp_status & TP_STATUS_VLAN_VALID) != 0) out.vlan = 0x10000u | aux.tp_vlan_tci;
      }
    }
    if (!has_time) clock_gettime(CLOCK_REALTIME, &out.when);
    return out;
  }

  void DeliverError(int err, const char* syscall) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Error error = ErrnoError(env, err, syscall);
    Call({error.Value()});
  }

  // Calls onPackets as a proper async callback (microtasks run after it). An exception thrown
  // by it becomes an uncaught exception, as for any event-loop callback.
  void Call(std::initializer_list<napi_value> args) {
    if (fd_ < 0 || callback_.IsEmpty()) return;
    try {
      callback_.MakeCallback(Value(), args, *context_);
    } catch (const Napi::Error& error) {
      napi_fatal_exception(Env(), error.Value());
    }
  }

  void ReadStatistics() {
    if (fd_ < 0) return;
    tpacket_stats stats{};
    socklen_t length = sizeof(stats);
    // The kernel resets the counters on every read: accumulate. tp_packets already includes
    // tp_drops (both count packets that passed the filter).
    if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &stats, &length) == 0) {
      packets_ += stats.tp_packets;
      drops_ += stats.tp_drops;
    }
  }

  void CloseNow() {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);  // removes the descriptor from epoll before it is closed
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), &PacketSocket::FreeHandle);
      poll_ = nullptr;
    }
    if (fd_ < 0) return;
    ReadStatistics();
    close(fd_);
    fd_ = -1;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseNow();
    DetachCleanupHook(info.Env());
    callback_.Reset();
    if (referenced_) {
      referenced_ = false;
      Napi::ObjectWrap<PacketSocket>::Unref();
    }
    return info.Env().Undefined();
  }

  // Stops reading until resume(): the caller has packets of the last batch still to deliver.
  // Packets that arrive meanwhile wait in the socket's receive buffer.
  Napi::Value Pause(const Napi::CallbackInfo& info) {
    if (fd_ >= 0 && poll_ != nullptr) uv_poll_stop(poll_);
    return info.Env().Undefined();
  }

  // Starts reading again after pause() or after an error was delivered (which left the poll stopped).
  Napi::Value Resume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0 || poll_ == nullptr) throw ErrnoError(env, EBADF, "uv_poll_start");
    const int rc = uv_poll_start(poll_, UV_READABLE, &PacketSocket::OnPoll);
    if (rc != 0) throw ErrnoError(env, -rc, "uv_poll_start");
    return env.Undefined();
  }

  // link(name) -> { ifindex, up }: the interface as the socket's namespace has it now.
  Napi::Value Link(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "link(name)");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    if (fd_ < 0) throw ErrnoError(env, EBADF, "ioctl(SIOCGIFINDEX)");
    if (name.empty() || name.size() >= IF_NAMESIZE) throw ErrnoError(env, ENODEV, "ioctl(SIOCGIFINDEX)");
    const int index = IndexOf(name);
    if (index < 0) throw ErrnoError(env, -index, "ioctl(SIOCGIFINDEX)");
    ifreq request{};
    memcpy(request.ifr_name, name.data(), name.size());
    if (ioctl(fd_, SIOCGIFFLAGS, &request) != 0) throw ErrnoError(env, errno, "ioctl(SIOCGIFFLAGS)");
    Napi::Object result = Napi::Object::New(env);
    result.Set("ifindex", Napi::Number::New(env, index));
    result.Set("up", Napi::Boolean::New(env, (request.ifr_flags & IFF_UP) != 0));
    return result;
  }

  // bind(ifindex): follows an interface that was deleted and created again (a new index).
  Napi::Value Rebind(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "bind(ifindex)");
    if (fd_ < 0) throw ErrnoError(env, EBADF, "bind");
    if (BindTo(info[0].As<Napi::Number>().Uint32Value()) != 0) throw ErrnoError(env, errno, "bind");
    return env.Undefined();
  }

  Napi::Value JsRef(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value JsUnref(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    ReadStatistics();
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("packets", Napi::Number::New(env, static_cast<double>(packets_)));
    result.Set("drops", Napi::Number::New(env, static_cast<double>(drops_)));
    result.Set("wakeups", Napi::Number::New(env, static_cast<double>(wakeups_with_packets_)));
    return result;
  }

  Napi::Value IsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), fd_ < 0); }

  Napi::Value BoundIndex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ifindex_); }

  // interfaceIndex(name, netns) -> number: if_nametoindex(3) in that namespace ('' for the
  // caller's own). Needs no privilege in the caller's own namespace, so an unknown name is
  // reported as ENODEV before anything needs CAP_NET_RAW.
  static Napi::Value InterfaceIndex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
      throw Napi::TypeError::New(env, "interfaceIndex(name, netns)");
    }
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    const std::string netns = info[1].As<Napi::String>().Utf8Value();
    if (name.empty() || name.size() >= IF_NAMESIZE) throw ErrnoError(env, ENODEV, "if_nametoindex");
    unsigned int index = 0;
    int err = 0;
    const char* call = "if_nametoindex";
    {
      NamespaceScope scope(netns);
      if (!scope.ok()) {
        err = scope.error();
        call = scope.call();
      } else {
        index = if_nametoindex(name.c_str());
        if (index == 0) err = errno;
      }
    }
    if (err != 0) throw ErrnoError(env, err, call);
    return Napi::Number::New(env, index);
  }

  // localAddresses(netns) -> [{ name, family: 4 | 6, address: Buffer }]: every IP address of
  // the namespace ('' for the caller's own), as getifaddrs(3) lists them there.
  static Napi::Value LocalAddresses(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "localAddresses(netns)");
    const std::string netns = info[0].As<Napi::String>().Utf8Value();
    ifaddrs* list = nullptr;
    int err = 0;
    const char* call = "getifaddrs";
    {
      NamespaceScope scope(netns);
      if (!scope.ok()) {
        err = scope.error();
        call = scope.call();
      } else if (getifaddrs(&list) != 0) {
        err = errno;
      }
    }
    if (err != 0) throw ErrnoError(env, err, call);
    std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> owned(list, &freeifaddrs);
    Napi::Array result = Napi::Array::New(env);
    uint32_t n = 0;
    for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
      if (entry->ifa_addr == nullptr) continue;
      const int family = entry->ifa_addr->sa_family;
      if (family != AF_INET && family != AF_INET6) continue;
      Napi::Object item = Napi::Object::New(env);
      item.Set("name", Napi::String::New(env, entry->ifa_name != nullptr ? entry->ifa_name : ""));
      if (family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
        item.Set("family", Napi::Number::New(env, 4));
        item.Set("address", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(&in->sin_addr), 4));
      } else {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
        item.Set("family", Napi::Number::New(env, 6));
        item.Set("address", Napi::Buffer<uint8_t>::Copy(env, in6->sin6_addr.s6_addr, 16));
      }
      result.Set(n++, item);
    }
    return result;
  }

  static constexpr size_t kControlSize = CMSG_SPACE(sizeof(timespec)) + CMSG_SPACE(sizeof(tpacket_auxdata));

  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  CleanupLink* cleanup_ = nullptr;
  bool referenced_ = false;
  uint32_t ifindex_ = 0;
  uint32_t batch_ = 0;
  uint32_t slot_ = 0;
  uint64_t packets_ = 0;
  uint64_t drops_ = 0;
  uint64_t wakeups_with_packets_ = 0;
  std::vector<uint8_t> data_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_ll> names_;
  std::vector<uint8_t> control_;
  std::vector<mmsghdr> messages_;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void InitPacketSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("PacketSocket", PacketSocket::Define(env));
}

}  // namespace jitguard
