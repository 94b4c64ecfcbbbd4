#pragma once
// Redaction of the personal data the Granite Code paper removes that a pattern can find without a model (the paper
// uses the StarPII model for names, e-mail addresses, IP addresses, keys and passwords; names need the model and are
// out of scope here, passwords are caught only where syntax shows them: assigned to a secret-sounding name or inside a
// URL). Replaced spans become placeholders, following BigCode's PII pipeline (bigcode-dataset/pii): e-mail addresses
// -> "<EMAIL>", secret keys, tokens and passwords -> "<KEY>", IP addresses -> "<IP_ADDRESS>" (the paper substitutes
// synthetic IPs; a placeholder keeps the output deterministic and obvious).
// What counts as each kind, and what deliberately does not (private/loopback IPs, version numbers, example.com
// addresses ...), is documented in pii.cpp and pinned by tests/data/test_pii.cpp.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace granite {

struct PiiConfig {
  bool emails = true;
  bool ip_addresses = true;
  bool keys = true;
  std::string email_placeholder = "<EMAIL>";
  std::string ip_placeholder = "<IP_ADDRESS>";
  std::string key_placeholder = "<KEY>";
};

struct PiiCounts {
  int64_t emails = 0, ip_addresses = 0, keys = 0;
  int64_t total() const { return emails + ip_addresses + keys; }
  PiiCounts& operator+=(const PiiCounts& other) {
    emails += other.emails;
    ip_addresses += other.ip_addresses;
    keys += other.keys;
    return *this;
  }
};

// Compiles its patterns once; redact() is const and safe to call from many threads at once.
class PiiRedactor {
 public:
  explicit PiiRedactor(PiiConfig config = {});
  ~PiiRedactor();
  PiiRedactor(const PiiRedactor&) = delete;
  PiiRedactor& operator=(const PiiRedactor&) = delete;

  // `text` is valid UTF-8. Returns the text with every detected span replaced; adds what it replaced to `counts`.
  std::string redact(std::string_view text, PiiCounts& counts) const;

 private:
  struct Patterns;
  PiiConfig config_;
  std::unique_ptr<Patterns> patterns_;
};

}  // namespace granite
