#include "delivery/client_machine.h"

#include <algorithm>
#include <utility>

#include "base/check.h"
#include "base/log.h"
#include "smtp/params.h"
#include "smtp/sasl.h"

namespace petrel::delivery {
namespace {

// Content is written in blocks of this much input (DATA; BDAT chunks have
// their own size), so a large message never sits twice in memory.
constexpr std::size_t kDataBlockOctets = 64 * 1024;

ClientState StateFor(Stage stage) {
  switch (stage) {
    case Stage::kGreeting:
      return ClientState::kGreeting;
    case Stage::kEhlo:
      return ClientState::kEhlo;
    case Stage::kHelo:
      return ClientState::kHelo;
    case Stage::kStartTls:
      return ClientState::kStartTls;
    case Stage::kMail:
      return ClientState::kMail;
    case Stage::kRcpt:
      return ClientState::kRcpt;
    case Stage::kData:
      return ClientState::kData;
    case Stage::kBdat:
      return ClientState::kSendingData;
    case Stage::kEndOfData:
      return ClientState::kSentEndOfData;
    case Stage::kRset:
      return ClientState::kRset;
    case Stage::kQuit:
      return ClientState::kQuit;
    case Stage::kAuth:
      return ClientState::kAuth;
  }
  return ClientState::kClosed;
}

// An address we must not put on a command line: a control character would
// end the line early and inject a command (the spool should never hold one,
// but the client does not trust that).
bool UnsendableAddress(std::string_view address) {
  for (char c : address) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return true;
  }
  return false;
}

std::string NotifyParam(std::uint8_t notify) {
  if (notify & smtp::kNotifyNever) return "NEVER";
  std::string out;
  auto add = [&out](const char* word) {
    if (!out.empty()) out += ',';
    out += word;
  };
  if (notify & smtp::kNotifySuccess) add("SUCCESS");
  if (notify & smtp::kNotifyFailure) add("FAILURE");
  if (notify & smtp::kNotifyDelay) add("DELAY");
  return out;
}

}  // namespace

void DataEncoder::Encode(std::string_view in, std::string& out) {
  out.reserve(out.size() + in.size() + in.size() / 64 + 4);
  std::size_t i = 0;
  if (pending_cr_ && !in.empty()) {
    pending_cr_ = false;
    out += "\r\n";
    line_start_ = true;
    if (in[0] == '\n') i = 1;  // the CR's LF came in this piece
  }
  while (i < in.size()) {
    // RFC 5321 4.5.2: a line that starts with "." gets one more.
    if (line_start_ && dot_stuff_ && in[i] == '.') out += '.';
    const std::size_t end = in.find_first_of("\r\n", i);
    const std::size_t stop = end == std::string_view::npos ? in.size() : end;
    if (stop > i) {
      out.append(in.substr(i, stop - i));
      line_start_ = false;
    }
    if (end == std::string_view::npos) break;
    if (in[end] == '\n') {  // a bare LF ends a line too
      out += "\r\n";
      line_start_ = true;
      i = end + 1;
    } else if (end + 1 == in.size()) {  // a CR at the end: wait for more
      pending_cr_ = true;
      i = end + 1;
    } else {  // CRLF, or a bare CR, which becomes CRLF
      out += "\r\n";
      line_start_ = true;
      i = end + (in[end + 1] == '\n' ? 2 : 1);
    }
  }
}

void DataEncoder::Finish(std::string& out) {
  if (pending_cr_) {
    pending_cr_ = false;
    out += "\r\n";
    line_start_ = true;
  }
  if (!line_start_) out += "\r\n";
  line_start_ = true;
  if (dot_stuff_) out += ".\r\n";
}

ClientMachine::ClientMachine(ClientOptions options, std::string remote_mta)
    : options_(std::move(options)), remote_mta_(std::move(remote_mta)) {
  fifo_.push_back({Stage::kGreeting});
}

ClientMachine::Action ClientMachine::action() const {
  if (saving_) return Action::kSaveOutcomes;
  if (closed_) return Action::kClosed;
  if (starting_tls_) return Action::kStartTls;
  if (!output_.empty()) return Action::kWrite;
  if (sending_content_ && fifo_.empty()) return Action::kWrite;
  if (!fifo_.empty()) return Action::kRead;
  return Action::kIdle;
}

std::chrono::seconds ClientMachine::timeout() const {
  const auto member = StateInfo(state_).timeout;
  return member != nullptr ? options_.*member : options_.mail_timeout;
}

void ClientMachine::Enter(ClientState next) {
  if (next == state_) return;
  log::Debug("{}: {}: {} -> {}",
             message_ ? std::string_view(message_->id) : std::string_view("-"),
             remote_mta_, StateInfo(state_).name, StateInfo(next).name);
  state_ = next;
}

void ClientMachine::SyncState() {
  ClientState next = state_;
  if (saving_) {
    next = ClientState::kSavingOutcomes;
  } else if (closed_) {
    next = ClientState::kClosed;
  } else if (starting_tls_) {
    next = ClientState::kTlsHandshake;
  } else if (!fifo_.empty()) {
    next = StateFor(fifo_.front().stage);
  } else if (sending_content_) {
    next = ClientState::kSendingData;
  } else if (ready_) {
    next = ClientState::kReady;
  }
  Enter(next);
}

std::string ClientMachine::Doing() const {
  const ClientState current =
      fifo_.empty() ? state_ : StateFor(fifo_.front().stage);
  return std::string(StateInfo(current).doing);
}

void ClientMachine::Send(std::string line, Pending pending) {
  output_ += line;
  output_ += "\r\n";
  fifo_.push_back(pending);
}

std::string ClientMachine::TakeOutput() {
  if (output_.empty() && sending_content_ && fifo_.empty()) ProduceContent();
  std::string out;
  out.swap(output_);
  Pump();
  SyncState();
  return out;
}

void ClientMachine::Feed(std::string_view bytes) {
  // Nothing is read between the STARTTLS reply and the handshake; a driver
  // that did would be handing us plaintext the peer may not have sent.
  if (closed_ || starting_tls_) return;
  parser_.Feed(bytes);
  Pump();
  SyncState();
}

// Replies are taken only while a command awaits one, in order, and only
// once that command is written. Bytes that come early (a peer that answers
// before we ask, or a test feeding a whole dialog at once) wait in the
// parser for the command they answer.
void ClientMachine::Pump() {
  while (!fifo_.empty() && output_.empty() && !closed_ && !saving_ &&
         !starting_tls_) {
    auto next = parser_.Next();
    if (!next) {
      const bool after_end =
          StateInfo(StateFor(fifo_.front().stage)).may_duplicate;
      const std::string text = std::string(smtp::ReplyErrorName(next.error())) +
                               " from " + remote_mta_ + " while " + Doing();
      SiteFailure(TroubleOutcome(Trouble::kMalformedReply, text, remote_mta_,
                                 after_end),
                  TroubleOutcome(Trouble::kMalformedReply, text, remote_mta_));
      return;
    }
    if (!next->has_value()) return;
    const Pending pending = fifo_.front();
    fifo_.pop_front();
    OnReply(pending, **next);
    SyncState();
  }
}

void ClientMachine::OnReply(const Pending& pending, const smtp::Reply& reply) {
  const bool some_accepted = txn_ && !txn_->accepted.empty();
  const Classification c = ClassifyReply(pending.stage, reply, some_accepted);
  switch (pending.stage) {
    case Stage::kGreeting:
      if (c.effect != Effect::kProceed) {
        SiteFailureFromReply(pending.stage, reply);
        return;
      }
      Send("EHLO " + options_.helo_name, {Stage::kEhlo});
      return;
    case Stage::kEhlo:
      if (c.effect == Effect::kProceed) {
        esmtp_ = true;
        extensions_ = smtp::ParseEhloReply(reply);
        if (extensions_.starttls && !tls_active_ &&
            options_.tls_policy != TlsPolicy::kNone) {
          Send("STARTTLS", {Stage::kStartTls});
        } else {
          AfterHello();
        }
      } else if (c.effect == Effect::kHeloFallback) {
        Send("HELO " + options_.helo_name, {Stage::kHelo});
      } else {
        SiteFailureFromReply(pending.stage, reply);
      }
      return;
    case Stage::kHelo:
      if (c.effect != Effect::kProceed) {
        SiteFailureFromReply(pending.stage, reply);
        return;
      }
      AfterHello();  // plain SMTP: no extensions, no parameters
      return;
    case Stage::kStartTls:
      if (c.effect == Effect::kProceed) {
        // Issue 4: the reply is read exactly. Anything after it came before
        // the handshake, in plaintext, and may be an attacker's: it is
        // dropped, never parsed as the replies to what we send inside TLS.
        const std::size_t early = parser_.Buffered();
        if (early > 0) {
          discarded_after_starttls_ += early;
          log::Warning(
              "{}: discarded {} octets sent after the reply to STARTTLS",
              remote_mta_, early);
        }
        parser_.Reset();
        starting_tls_ = true;
      } else if (c.effect == Effect::kStartTlsRefused) {
        if (options_.tls_policy == TlsPolicy::kMay) {
          // Plaintext, with the extensions already known.
          log::Info("{}: STARTTLS refused ({}); continuing in plaintext",
                    remote_mta_, smtp::SanitizeText(reply.Text()));
        }
        AfterHello();  // which gives up under encrypt/verify
      } else {
        SiteFailureFromReply(pending.stage, reply);
      }
      return;
    case Stage::kRset:
      if (c.effect != Effect::kProceed) {
        SiteFailureFromReply(pending.stage, reply);
        return;
      }
      needs_rset_ = false;
      if (message_ != nullptr && !txn_) Continue();
      return;
    case Stage::kQuit:
      closed_ = true;
      return;
    case Stage::kAuth:
      if (c.effect != Effect::kProceed) {
        SiteFailureFromReply(pending.stage, reply);
        return;
      }
      OnAuthReply(pending, reply);
      return;
    case Stage::kMail:
    case Stage::kRcpt:
    case Stage::kData:
    case Stage::kBdat:
    case Stage::kEndOfData:
      OnTransactionReply(pending, reply, c);
      return;
  }
}

void ClientMachine::OnTransactionReply(const Pending& pending,
                                       const smtp::Reply& reply,
                                       const Classification& c) {
  CHECK(txn_.has_value());
  if (c.effect == Effect::kSite) {
    SiteFailureFromReply(pending.stage, reply);
    return;
  }
  Transaction& t = *txn_;
  switch (pending.stage) {
    case Stage::kMail:
      if (c.effect == Effect::kProceed) {
        const bool pipelined = esmtp_ && extensions_.pipelining;
        if (!pipelined) SendRcpt(t.batch[0]);
      } else {
        // The sender or the message is refused: it concerns every recipient
        // of the message, not only this transaction's (Postfix does the
        // same). Pipelined RCPT and DATA replies are read and ignored.
        t.mail_refused = true;
        t.ended = true;
        SettleAll(ReplyOutcome(c.verdict, Stage::kMail, reply, remote_mta_));
      }
      break;
    case Stage::kRcpt:
      OnRcptReply(pending, reply, c);
      break;
    case Stage::kData:
      if (t.mail_refused || t.accepted.empty()) {
        // RFC 2920 3.1: DATA went out with the RCPTs and nobody was
        // accepted. A server that still says 354 gets an empty message
        // ended at once, so that both sides stay in step.
        if (c.effect == Effect::kProceed) {
          output_ += ".\r\n";
          fifo_.push_back({Stage::kEndOfData, 0, true});
        }
        t.ended = true;
        break;
      }
      if (c.effect == Effect::kProceed) {
        StartContent();
      } else {
        SettleAccepted(
            ReplyOutcome(c.verdict, Stage::kData, reply, remote_mta_));
        t.ended = true;
      }
      break;
    case Stage::kBdat:
      if (c.effect != Effect::kProceed) {
        // RFC 3030 2: a refused chunk fails the transaction; no more chunks.
        sending_content_ = false;
        SettleAccepted(
            ReplyOutcome(c.verdict, Stage::kBdat, reply, remote_mta_));
        t.ended = true;
      }
      break;
    case Stage::kEndOfData:
      if (pending.discard) break;
      SettleAccepted(ReplyOutcome(
          c.effect == Effect::kProceed ? Verdict::kDelivered : c.verdict,
          Stage::kEndOfData, reply, remote_mta_));
      t.ended = true;
      t.completed = true;
      break;
    default:
      CHECK(false);
  }
  if (txn_ && txn_->ended && fifo_.empty() && !sending_content_) {
    FinishTransaction();
  }
}

void ClientMachine::OnRcptReply(const Pending& pending,
                                const smtp::Reply& reply,
                                const Classification& c) {
  Transaction& t = *txn_;
  ++t.rcpt_replies;
  if (!t.mail_refused) {
    const std::size_t position = pending.position;
    if (c.effect == Effect::kProceed) {
      // Even after "too many": the server took it and will deliver the data
      // to it; trying it again later would deliver it twice.
      t.accepted.push_back(position);
    } else if (t.too_many) {
      t.returned.push_back(position);  // not judged: tried again later
    } else if (c.effect == Effect::kTooManyRecipients) {
      t.too_many = reply;
      t.returned.push_back(position);
    } else {
      Settle(position,
             ReplyOutcome(c.verdict, Stage::kRcpt, reply, remote_mta_));
    }
  }
  const bool pipelined = esmtp_ && extensions_.pipelining;
  if (pipelined) {
    if (t.rcpt_replies == t.rcpt_sent) AfterRcptReplies();
  } else if (!t.too_many && t.rcpt_sent < t.batch.size()) {
    SendRcpt(t.batch[t.rcpt_sent]);
  } else {
    AfterRcptReplies();
  }
}

void ClientMachine::AfterRcptReplies() {
  Transaction& t = *txn_;
  if (t.mail_refused) return;
  // Without PIPELINING, the recipients not asked for after "too many".
  for (std::size_t i = t.rcpt_sent; i < t.batch.size(); ++i) {
    t.returned.push_back(t.batch[i]);
  }
  t.rcpt_sent = t.batch.size();
  if (t.data_sent) return;  // pipelined DATA: its reply decides
  if (t.accepted.empty()) {
    t.ended = true;
    return;
  }
  if (esmtp_ && extensions_.chunking) {
    StartContent();
  } else {
    Send("DATA", {Stage::kData});
    t.data_sent = true;
  }
}

void ClientMachine::StartContent() {
  Transaction& t = *txn_;
  t.bdat = esmtp_ && extensions_.chunking;
  t.encoder = DataEncoder(!t.bdat);
  t.offset = 0;
  sending_content_ = true;
}

std::vector<std::size_t> ClientMachine::TakeEndOfDataRecipients() {
  std::vector<std::size_t> out;
  if (!txn_ || !txn_->end_queued || txn_->end_announced) return out;
  txn_->end_announced = true;
  for (std::size_t pos : txn_->accepted) {
    out.push_back(message_->recipients[pos].index);
  }
  return out;
}

void ClientMachine::ProduceContent() {
  Transaction& t = *txn_;
  const std::string& content = *message_->content;
  if (!t.bdat) {
    const std::size_t n = std::min(kDataBlockOctets, content.size() - t.offset);
    t.encoder.Encode(std::string_view(content).substr(t.offset, n), output_);
    t.offset += n;
    if (t.offset == content.size()) {
      t.encoder.Finish(output_);
      fifo_.push_back({Stage::kEndOfData});
      t.end_queued = true;
      sending_content_ = false;
    }
    return;
  }
  // RFC 3030: each chunk's size is exact, so a chunk is encoded before its
  // BDAT command is written. One chunk in flight at a time.
  const std::size_t chunk_octets =
      std::max<std::size_t>(1, options_.bdat_chunk_octets);
  const std::size_t n = std::min(chunk_octets, content.size() - t.offset);
  std::string chunk;
  t.encoder.Encode(std::string_view(content).substr(t.offset, n), chunk);
  t.offset += n;
  const bool last = t.offset == content.size();
  if (last) t.encoder.Finish(chunk);
  output_ =
      "BDAT " + std::to_string(chunk.size()) + (last ? " LAST" : "") + "\r\n";
  output_ += chunk;
  fifo_.push_back({last ? Stage::kEndOfData : Stage::kBdat});
  if (last) {
    sending_content_ = false;
    t.end_queued = true;
  }
}

void ClientMachine::FinishTransaction() {
  Transaction& t = *txn_;
  if (t.too_many && t.settled == 0) {
    // Not even one recipient: another transaction would fare no better
    // now. Everything left waits for a later attempt.
    const Outcome deferred = TooManyRecipientsOutcome(*t.too_many, remote_mta_);
    for (std::size_t position : t.returned) Settle(position, deferred);
    SettleAll(deferred);
  } else {
    for (auto it = t.returned.rbegin(); it != t.returned.rend(); ++it) {
      pool_.push_front(*it);
    }
  }
  // After a completed end of data the server has reset the transaction
  // itself (RFC 5321 4.1.1.4); otherwise it may hold a half transaction.
  if (!t.completed) needs_rset_ = true;
  txn_.reset();
  if (!outcomes_.empty()) {
    saving_ = true;
  } else {
    Continue();
  }
}

void ClientMachine::Continue() {
  CHECK(message_ != nullptr);
  if (closed_ || pool_.empty()) {
    message_ = nullptr;
    settled_.clear();
    pool_.clear();
    return;
  }
  if (needs_rset_) {
    Send("RSET", {Stage::kRset});  // its reply calls Continue() again
    return;
  }
  StartTransaction();
}

void ClientMachine::StartTransaction() {
  txn_.emplace();
  ++transactions_;
  Transaction& t = *txn_;
  std::size_t limit =
      std::max<std::uint32_t>(1, options_.max_recipients_per_transaction);
  if (esmtp_ && extensions_.limits_rcptmax) {
    limit = std::min<std::size_t>(limit, *extensions_.limits_rcptmax);
  }
  while (t.batch.size() < limit && !pool_.empty()) {
    t.batch.push_back(pool_.front());
    pool_.pop_front();
  }
  CHECK(!t.batch.empty());

  const ClientMessage& m = *message_;
  std::string mail = "MAIL FROM:<" + m.sender + ">";
  if (esmtp_) {
    if (extensions_.size) {
      mail += " SIZE=" + std::to_string(m.content->size());  // RFC 1870
    }
    // RFC 6152. Without 8BITMIME offered the text goes as it is (as
    // Postfix does with its MIME conversion off): refusing would help
    // nobody.
    if (m.eight_bit_mime && extensions_.eight_bit_mime) {
      mail += " BODY=8BITMIME";
    }
    if (m.smtputf8 && extensions_.smtputf8) mail += " SMTPUTF8";
    if (extensions_.dsn) {  // RFC 3461 4.3, 4.4
      if (m.dsn_ret == static_cast<std::uint8_t>(smtp::DsnRet::kFull)) {
        mail += " RET=FULL";
      } else if (m.dsn_ret ==
                 static_cast<std::uint8_t>(smtp::DsnRet::kHeaders)) {
        mail += " RET=HDRS";
      }
      if (!m.dsn_envid.empty()) {
        mail += " ENVID=" + smtp::EncodeXtext(m.dsn_envid);
      }
    }
  }
  Send(std::move(mail), {Stage::kMail});
  if (esmtp_ && extensions_.pipelining) {
    // RFC 2920 3.1: MAIL, the RCPTs and DATA in one group; BDAT waits for
    // the RCPT replies (no content to a transaction without recipients).
    for (std::size_t position : t.batch) SendRcpt(position);
    if (!extensions_.chunking) {
      Send("DATA", {Stage::kData});
      t.data_sent = true;
    }
  }
}

void ClientMachine::SendRcpt(std::size_t position) {
  const ClientRecipient& r = message_->recipients[position];
  std::string rcpt = "RCPT TO:<" + r.address + ">";
  if (esmtp_ && extensions_.dsn) {  // RFC 3461 4.1, 4.2
    const std::string notify = NotifyParam(r.notify);
    if (!notify.empty()) rcpt += " NOTIFY=" + notify;
    if (!r.orcpt_address.empty()) {
      rcpt += " ORCPT=" + (r.orcpt_type.empty() ? "rfc822" : r.orcpt_type) +
              ";" + smtp::EncodeXtext(r.orcpt_address);
    }
  }
  Send(std::move(rcpt), {Stage::kRcpt, position});
  ++txn_->rcpt_sent;
}

void ClientMachine::StartMessage(const ClientMessage& message) {
  CHECK(message_ == nullptr && !saving_ && fifo_.empty() && !txn_);
  CHECK(message.content != nullptr);
  message_ = &message;
  settled_.assign(message.recipients.size(), false);
  pool_.clear();
  outcomes_.clear();
  if (message.recipients.empty()) {
    message_ = nullptr;
    return;
  }
  std::optional<Outcome> whole;
  if (!ready()) {
    whole = TroubleOutcome(Trouble::kConnectionUnusable,
                           "connection with " + remote_mta_ + " is not usable",
                           remote_mta_);
  } else if (UnsendableAddress(message.sender)) {
    whole = TroubleOutcome(
        Trouble::kBadSender,
        "bad sender address syntax: <" + message.sender + ">", remote_mta_);
  } else if (message.smtputf8 && !(esmtp_ && extensions_.smtputf8)) {
    // RFC 6531 3.4: no downgrade; the sender asked for SMTPUTF8.
    whole = TroubleOutcome(
        Trouble::kSmtputf8Required,
        "SMTPUTF8 is required, but was not offered by host " + remote_mta_,
        remote_mta_);
  } else if (esmtp_ && extensions_.size && extensions_.size_limit > 0 &&
             message.content->size() > extensions_.size_limit) {
    // RFC 1870 6: a client should not send a message the server has said
    // is too big; Postfix bounces it (5.3.4) without trying.
    whole = TroubleOutcome(
        Trouble::kMessageTooBig,
        "message size " + std::to_string(message.content->size()) +
            " exceeds size limit " + std::to_string(extensions_.size_limit) +
            " of server " + remote_mta_,
        remote_mta_);
  }
  for (std::size_t position = 0; position < message.recipients.size();
       ++position) {
    const ClientRecipient& r = message.recipients[position];
    if (whole) {
      Settle(position, *whole);
    } else if (r.address.empty() || UnsendableAddress(r.address)) {
      // Seed 003: a bad recipient fails alone, with a clear reason.
      Settle(position,
             TroubleOutcome(Trouble::kBadRecipient,
                            "bad recipient address syntax: <" + r.address + ">",
                            remote_mta_));
    } else {
      pool_.push_back(position);
    }
  }
  if (!outcomes_.empty()) {
    saving_ = true;
  } else {
    Continue();
  }
  Pump();
  SyncState();
}

Outcomes ClientMachine::TakeOutcomes() {
  CHECK(saving_);
  Outcomes out;
  out.swap(outcomes_);
  return out;
}

void ClientMachine::OnOutcomesSaved() {
  CHECK(saving_ && outcomes_.empty());
  saving_ = false;
  if (message_ != nullptr) Continue();
  Pump();
  SyncState();
}

void ClientMachine::StartQuit() {
  CHECK(message_ == nullptr && !saving_);
  if (!ready()) {
    closed_ = true;
  } else {
    quitting_ = true;
    Send("QUIT", {Stage::kQuit});
    Pump();
  }
  SyncState();
}

void ClientMachine::OnConnectionLost(Loss loss, std::string_view error) {
  if (closed_) return;
  if (quitting_) {
    closed_ = true;
    SyncState();
    return;
  }
  const ClientState current =
      fifo_.empty() ? state_ : StateFor(fifo_.front().stage);
  std::string text;
  if (loss == Loss::kTimeout) {
    text = "conversation with " + remote_mta_ + " timed out while " + Doing();
  } else {
    text = "lost connection with " + remote_mta_ + " while " + Doing();
    if (loss == Loss::kError && !error.empty()) {
      text += " (" + std::string(error) + ")";
    }
  }
  const Trouble trouble =
      loss == Loss::kTimeout ? Trouble::kTimeout : Trouble::kLostConnection;
  SiteFailure(TroubleOutcome(trouble, text, remote_mta_,
                             StateInfo(current).may_duplicate),
              TroubleOutcome(trouble, text, remote_mta_));
  SyncState();
}

void ClientMachine::OnTlsStarted() {
  CHECK(starting_tls_ && !closed_);
  starting_tls_ = false;
  tls_active_ = true;
  // RFC 3207 4.2: forget what the server said before TLS, ask again.
  esmtp_ = false;
  extensions_ = smtp::EhloExtensions{};
  Send("EHLO " + options_.helo_name, {Stage::kEhlo});
  SyncState();
}

void ClientMachine::OnTlsFailed(std::string_view error, bool not_verified) {
  CHECK(starting_tls_ && !closed_);
  starting_tls_ = false;
  tls_failed_ = true;
  std::string text =
      not_verified
          ? "Server certificate not verified (TLS policy verify) for " +
                remote_mta_
          : "TLS handshake failed with " + remote_mta_;
  if (!error.empty()) text += ": " + std::string(error);
  const Trouble trouble = not_verified ? Trouble::kTlsNotVerified
                          : options_.tls_policy == TlsPolicy::kMay
                              ? Trouble::kLostConnection
                              : Trouble::kTlsRequired;
  const Outcome outcome = TroubleOutcome(trouble, text, remote_mta_);
  SiteFailure(outcome, outcome);
  SyncState();
}

void ClientMachine::AfterHello() {
  if (!tls_active_ && (options_.tls_policy == TlsPolicy::kEncrypt ||
                       options_.tls_policy == TlsPolicy::kVerify)) {
    const Outcome outcome = TroubleOutcome(
        Trouble::kTlsRequired,
        "TLS is required (TLS policy " +
            std::string(options_.tls_policy == TlsPolicy::kVerify ? "verify"
                                                                  : "encrypt") +
            "), but was not offered by host " + remote_mta_,
        remote_mta_);
    SiteFailure(outcome, outcome);
    return;
  }
  if (!options_.credentials) {
    ready_ = true;
    return;
  }
  if (!tls_active_) {
    const Outcome outcome =
        TroubleOutcome(Trouble::kAuthWithoutTls,
                       "AUTH credentials are configured for " + remote_mta_ +
                           ", but TLS is not on: not sending them in plaintext",
                       remote_mta_);
    SiteFailure(outcome, outcome);
    return;
  }
  const auto& mechanisms = extensions_.auth_mechanisms;
  auto offered = [&mechanisms](std::string_view m) {
    return std::find(mechanisms.begin(), mechanisms.end(), m) !=
           mechanisms.end();
  };
  const ClientCredentials& cred = *options_.credentials;
  if (offered("PLAIN")) {
    // `position` counts the steps of the exchange: 0 = the final reply.
    Send("AUTH PLAIN " + smtp::EncodePlainResponse(cred.user, cred.password),
         {Stage::kAuth, 0});
  } else if (offered("LOGIN")) {
    Send("AUTH LOGIN", {Stage::kAuth, 2});
  } else {
    log::Warning("{}: AUTH PLAIN/LOGIN not offered; sending without AUTH",
                 remote_mta_);
    ready_ = true;
  }
}

void ClientMachine::OnAuthReply(const Pending& pending,
                                const smtp::Reply& reply) {
  const std::size_t step = pending.position;
  const ClientCredentials& cred = *options_.credentials;
  if (reply.code == 334 && step == 2) {
    Send(smtp::EncodeBase64(cred.user), {Stage::kAuth, 1});
  } else if (reply.code == 334 && step == 1) {
    Send(smtp::EncodeBase64(cred.password), {Stage::kAuth, 0});
  } else if (reply.code == 235 && step == 0) {
    log::Info("{}: AUTH as {} accepted", remote_mta_,
              smtp::SanitizeText(cred.user));
    ready_ = true;
  } else {
    // 235 too early or 334 too late: out of step.
    const Outcome outcome =
        TroubleOutcome(Trouble::kProtocolError,
                       "unexpected reply to AUTH from " + remote_mta_ + ": " +
                           smtp::SanitizeText(reply.Text()),
                       remote_mta_);
    SiteFailure(outcome, outcome);
  }
}

void ClientMachine::Settle(std::size_t position, Outcome outcome) {
  CHECK(position < settled_.size() && !settled_[position]);
  settled_[position] = true;
  outcomes_.emplace_back(message_->recipients[position].index,
                         std::move(outcome));
  if (txn_) ++txn_->settled;
}

void ClientMachine::SettleAccepted(const Outcome& outcome) {
  for (std::size_t position : txn_->accepted) {
    if (!settled_[position]) Settle(position, outcome);
  }
}

void ClientMachine::SettleAll(const Outcome& outcome) {
  for (std::size_t position = 0; position < settled_.size(); ++position) {
    if (!settled_[position]) Settle(position, outcome);
  }
  pool_.clear();
}

void ClientMachine::SiteFailureFromReply(Stage stage,
                                         const smtp::Reply& reply) {
  const Outcome others =
      ReplyOutcome(Verdict::kDeferred, stage, reply, remote_mta_);
  Outcome accepted = others;
  // A reply after the end of data that is neither success nor failure (a
  // 3xx): the peer may have the message. 421 says it does not.
  if (stage == Stage::kEndOfData && reply.code != 421) {
    accepted.possible_duplicate = true;
    accepted.detail += " -- message may be sent more than once";
  }
  SiteFailure(accepted, others);
}

void ClientMachine::SiteFailure(const Outcome& for_accepted,
                                const Outcome& for_others) {
  closed_ = true;
  fifo_.clear();
  output_.clear();
  sending_content_ = false;
  if (!ready_) setup_failure_ = for_others;
  if (message_ != nullptr && !saving_) {
    if (txn_) SettleAccepted(for_accepted);
    SettleAll(for_others);
    txn_.reset();
    if (!outcomes_.empty()) {
      saving_ = true;
    } else {
      message_ = nullptr;
    }
  }
}

}  // namespace petrel::delivery
