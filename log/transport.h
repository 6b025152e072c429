// Transport: carries LogMessages between the replicas of one log over TCP.
//
// Wire format: each frame is a 4-byte big-endian length followed by that
// many bytes of a serialized cairn.v1.LogMessage. A frame longer than
// `max_frame_bytes` or one that does not parse closes the connection.
//
// Connections are one-way. For every peer the transport keeps one outbound
// connection that only carries our messages to it (reconnecting with capped
// exponential backoff whenever it breaks); inbound connections accepted on
// our own peer port only carry peers' messages to us. Nothing is ever
// acknowledged at this layer: Paxos tolerates loss, duplication and
// reordering, and retransmits what matters. Accordingly the per-peer send
// queue is bounded, and when it is full the OLDEST queued message is dropped
// (newer heartbeats and accepts supersede older ones); frames being written
// when a connection breaks are lost too. Both are counted in Stats().
//
// Threads: the transport runs its own asio::io_context on one thread, the
// I/O thread. The receive callback runs on that thread, one message at a
// time. The I/O thread also runs whatever its owner hands it with Post() and
// PostAfter(): a LogServer runs its Node there, so that a message received,
// handled and answered never changes threads. While a callback or posted
// function runs (a LogServer's fsync included) no other I/O progresses:
// frames wait in the kernel's socket buffers. Send() called on the I/O
// thread starts writing at once (no hand-off); from any other thread it
// wakes the I/O thread. Every public method is thread-safe.
//
// Lifecycle: construct, Start() (binds and listens), Send() any number of
// times, Stop() (or destroy). A transport cannot be restarted.

#ifndef CAIRN_LOG_TRANSPORT_H_
#define CAIRN_LOG_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cairn/v1/log.pb.h"

namespace cairn::log {

// Where a replica listens for its peers.
struct PeerAddress {
  std::string host;  // IPv4/IPv6 literal or a resolvable name
  uint16_t port = 0;

  std::string ToString() const;
};

// Parses "host:port" (IPv6 as "[::1]:7101"). kInvalidArgument naming the
// text when it is malformed or the port is not in 1..65535.
absl::StatusOr<PeerAddress> ParsePeerAddress(absl::string_view text);

struct TransportOptions {
  uint32_t node_id = 0;
  // Where to accept peers' connections; port 0 picks an ephemeral port
  // (see Transport::port()).
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 0;
  // Every other replica's address (our own id, if present, is ignored).
  std::map<uint32_t, PeerAddress> peers;

  size_t max_frame_bytes = 64 << 20;
  // Messages queued per peer beyond which the oldest is dropped.
  size_t max_queued_messages = 8192;
  // Reconnect backoff: starts at the initial delay and doubles per failed
  // attempt up to the cap; a successful connection resets it.
  absl::Duration reconnect_initial_backoff = absl::Milliseconds(10);
  absl::Duration reconnect_max_backoff = absl::Milliseconds(500);
  // A connection attempt that has not completed by then is abandoned.
  absl::Duration connect_timeout = absl::Seconds(2);
};

// Counters since Start(), summed over peers.
struct TransportStats {
  uint64_t messages_sent = 0;      // fully written to a socket
  uint64_t bytes_sent = 0;         // frame bytes, headers included
  uint64_t messages_received = 0;  // parsed and delivered
  uint64_t bytes_received = 0;
  uint64_t dropped_queue_full = 0;    // oldest message evicted from a queue
  uint64_t dropped_on_error = 0;      // being written when a connection broke
  uint64_t dropped_unknown_peer = 0;  // no address for the id, or not running
  uint64_t connects = 0;              // outbound connections established
  uint64_t connect_failures = 0;
  uint64_t bad_frames = 0;           // oversized or unparsable: closed
  uint64_t inbound_connections = 0;  // accepted
  uint64_t queued = 0;               // messages waiting right now
};

class Transport {
 public:
  using Receiver = std::function<void(cairn::v1::LogMessage message)>;

  // `receiver` gets every message that arrives (on the transport's thread).
  Transport(TransportOptions options, Receiver receiver);
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  // Stops the transport (see Stop()).
  ~Transport();

  // Binds and listens on the peer port, starts the I/O thread and begins
  // connecting to every peer. Returns kUnavailable when the address cannot be
  // bound (in use, not local), kInvalidArgument for an unparsable listen
  // address, kFailedPrecondition when already started or stopped; messages
  // name the address.
  absl::Status Start();

  // Closes every connection and joins the I/O thread; queued messages are
  // discarded. Idempotent. REQUIRES: not called from the receive callback.
  void Stop();

  // Queues `message` for peer message.to(). Never blocks; a message for a
  // peer without a known address, or sent before Start()/after Stop(), is
  // dropped (and counted).
  void Send(const cairn::v1::LogMessage& message);

  // Sets (or changes) where peer `id` listens. A changed address closes the
  // current connection to it; queued messages go to the new address.
  void SetPeerAddress(uint32_t id, const PeerAddress& address);

  // Runs `fn` on the I/O thread, after every function posted before it.
  // Returns false (and never runs `fn`) before Start() or once Stop() has
  // begun; a function still queued when Stop() runs is destroyed unrun.
  bool Post(std::function<void()> fn);
  // Runs `fn` on the I/O thread once `delay` has passed; as Post() otherwise
  // (Stop() cancels pending ones).
  bool PostAfter(absl::Duration delay, std::function<void()> fn);
  // True when called on the I/O thread (a receive callback or a posted
  // function).
  bool InIoThread() const;

  // The bound peer port once Start() succeeded, else options.listen_port.
  uint16_t port() const;

  TransportStats Stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::log

#endif  // CAIRN_LOG_TRANSPORT_H_
