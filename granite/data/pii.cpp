#include "granite/data/pii.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "granite/core/ascii.h"
#include "granite/core/check.h"
#include "granite/core/strings.h"
#include "granite/data/filters.h"  // count_chars

// Pattern-based PII redaction after BigCode's regex pipeline (bigcode-dataset/pii:
// utils/emails_ip_addresses_detection.py for e-mails and IPs, utils/keys_detection.py = detect-secrets plugins for
// keys, pii_redaction.py for which IPs are left alone). Our own rules, each tightened where code produces look-alikes;
// every rule and every exception is pinned by tests/data/test_pii.cpp.
//
// Order: keys, then e-mails, then IP addresses; a later kind never touches a span an earlier kind replaced (a password
// value may contain an '@'; an e-mail's domain is never an IP). Speed: a corpus of many GB goes through here, so each
// search starts at a literal byte the JIT finds with SIMD ('@' for e-mails, the prefix of each key family), IPv6 is
// found from ':' by memchr, and a pass whose byte is absent ('@', '.', ':') is skipped outright.
//
// Regexes are PCRE2, JIT-compiled, in byte mode (no PCRE2_UTF): every pattern is ASCII and every span starts and ends
// next to an ASCII byte or at the text's ends, so a span never splits a code point and the output is valid UTF-8 when
// the input is; byte mode also needs no UTF validity promise (PCRE2_NO_UTF_CHECK on bad input is undefined behaviour)
// and skips UTF decoding. Match data is allocated per redact() call, so redact() is const and thread-safe.

namespace granite {

namespace {

enum class Kind { key, email, ip };

struct Span {
  size_t begin, end;
  Kind kind = Kind::key;
  bool operator<(const Span& other) const { return begin < other.begin; }
};

bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
bool is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }
bool is_word(unsigned char c) { return is_alnum(c) || c == '_'; }
bool is_hex(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Whether [begin, end) overlaps a span already replaced; `taken` is sorted and its spans are disjoint.
bool overlaps(const std::vector<Span>& taken, size_t begin, size_t end) {
  auto it = std::upper_bound(taken.begin(), taken.end(), Span{begin, begin});
  if (it != taken.end() && it->begin < end) return true;
  return it != taken.begin() && std::prev(it)->end > begin;
}

// ---------------------------------------------------------------------------------------------------------------------
// PCRE2 plumbing

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

class Pattern {
 public:
  Pattern(const std::string& pattern, const char* name) : name_(name) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &error, &offset, nullptr);
    GRANITE_CHECK(code_ != nullptr, "pii: cannot compile the ", name, " regex at offset ", offset, ": ",
                  pcre2_message(error));
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
  }
  ~Pattern() { pcre2_code_free(code_); }
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;

  // Finds the first match at or after `start`; false when there is none. Groups are read from `md`.
  bool find(std::string_view text, size_t start, pcre2_match_data* md) const {
    if (start > text.size()) return false;
    int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    GRANITE_CHECK(rc >= 0, "pii: the ", name_, " regex failed: ", pcre2_message(rc));
    return true;
  }

 private:
  const char* name_;
  pcre2_code* code_ = nullptr;
};

// "Nothing": a group that did not take part, or a match that is a look-alike.
Span no_span() { return {std::string_view::npos, 0}; }
bool has(const Span& s) { return s.begin != std::string_view::npos; }

// Span of capture group `g` of the last match, or no_span() when the group did not take part.
Span group(pcre2_match_data* md, int g) {
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  if (uint32_t(g) >= pcre2_get_ovector_count(md) || ov[2 * g] == PCRE2_UNSET) return no_span();
  return {ov[2 * g], ov[2 * g + 1]};
}

// ---------------------------------------------------------------------------------------------------------------------
// Keys: detect-secrets' plugins (what BigCode ran, utils/keys_detection.py), as one regex per family. Each regex
// starts with a literal (assignments: one of the two separator bytes), which PCRE2's JIT finds with a SIMD search at
// 1.5-15 GB/s; one alternation of all of them has many possible first bytes (A g x s r e - = :) and ran ~40x slower
// on /usr/lib/python3.11, so eight cheap passes beat one slow one.
// Families, in priority order (a later one never takes a span an earlier one took):
//   PEM private-key blocks, markers included, one placeholder per block (PrivateKeyDetector);
//   tokens whose own format identifies them, only at full length and not glued to a word: AWS access key ids
//     (AWSKeyDetector), Google API keys, GitHub classic and fine-grained tokens (GitHubTokenDetector), Slack tokens
//     (SlackDetector), Stripe live keys (StripeDetector), OpenAI keys (48 characters, or the sk-proj- family; a shorter
//     "sk-..." is too often a CSS class or a name), JWTs (JwtTokenDetector: base64url {"... header and payload);
//   passwords in URLs, scheme://user:password@host (BasicAuthDetector): only the password is replaced, so the e-mail
//     pass does not then take "password@host" for an address;
//   assignments of a string to a secret-sounding name (KeywordDetector, simplified): only the value is replaced, the
//     name and the quotes stay: DB_PASSWORD = "hunter2x9"  ->  DB_PASSWORD = "<KEY>".
const char* const kPemPattern =
    "-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\\s\\S]*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----";
const char* const kNotAfterWord = "(?<![A-Za-z0-9_-])";
const char* const kTokenPatterns[] = {
    "A(?:KIA[0-9A-Z]{16}(?![0-9A-Za-z])|Iza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-]))",                 // AWS id, Google
    "g(?:h[pousr]_[A-Za-z0-9]{36,}|ithub_pat_[A-Za-z0-9_]{22,})",                                 // GitHub
    "xox[abprs]-[A-Za-z0-9-]{10,}",                                                                // Slack
    "(?:[rs]k_live_[0-9A-Za-z]{24,}|sk-(?:[A-Za-z0-9]{48}(?![A-Za-z0-9_-])|(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}))",
    "eyJ[A-Za-z0-9_-]{10,}\\.eyJ[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}",                          // JWT
};
// Group 1: the password of scheme://user:password@host.
const char* const kUrlPasswordPattern = "://[^\\s/?#@:'\"<>]{1,128}:([^\\s/?#@'\"<>]{1,256})@";
// Anchored at the separator (=, :, =>, :=), the one byte every assignment has; the name before it is checked by hand.
// Groups: 1 separator, 2 quote, 3 quoted value (no whitespace, quotes or backslashes), 4 unquoted value to the end of
// the line (.env NAME=value, YAML name: value, ~/.aws/credentials name = value). Possessive runs: a value that fails
// is never re-tried shorter, so a long line of separators costs at most 512 steps per separator.
const char* const kAssignmentPattern =
    "(=>|:=|=|:)[ \\t]*(?:"
    "([\"'`])([^\"'`\\s\\\\]{8,512}+)\\g{-2}"                         // quoted
    "|([^\\s\"'`#,;(){}\\[\\]<>]{8,512}+)[ \\t]*+(?=\\r?\\n|\\z))";  // unquoted, to the end of the line

// Placeholder words that mark a value as documentation or a template, not a secret: "your-api-key-here",
// "changeme", AWS's own documentation key "...EXAMPLEKEY", "xxxxxxxx", "${DB_PASSWORD}", "<token>", "{{ secret }}",
// "%(password)s", and values that repeat the kind of secret they stand for ("password123", "mysecret42").
// Deciding: such values are default/test credentials in code far more often than real ones; a real password that
// contains the word "password" is missed, a trade BigCode also made (detect-secrets' is_templated_secret filter).
bool is_placeholder_value(std::string_view value) {
  const std::string v = ascii_lowercase(value);
  for (const char* word : {"password", "passwd", "secret", "changeme", "example", "sample", "your", "dummy",
                           "placeholder", "redacted", "xxx", "***", "..."}) {
    if (contains(v, word)) return true;
  }
  for (const char* templ : {"<", ">", "${", "{{", "}}", "%(", "$("}) {
    if (contains(v, templ)) return true;
  }
  // $VAR (shell / env references) and paths ("/run/secrets/db", "~/.ssh/id_rsa", "./key.pem") name a secret elsewhere
  return v[0] == '$' || v[0] == '/' || v.compare(0, 2, "~/") == 0 || v.compare(0, 2, "./") == 0 ||
         contains(v, "://");
}

// An assigned value is a secret when it is long (>= 8 characters), mixes letters and digits (plain words and numbers
// are settings, messages and lengths: PASSWORD_MIN_LENGTH = "12345678", secret_header = "Authorization") and is no
// placeholder. Values never contain whitespace (the regex), which drops prose ("Enter your password 2 times").
// Non-ASCII characters count as letters ("Пароль2024").
bool is_secret_value(std::string_view value) {
  if (count_chars(value) < 8) return false;
  bool letter = false, digit = false;
  for (unsigned char c : value) {
    letter = letter || is_alpha(c) || c >= 0x80;
    digit = digit || is_digit(c);
  }
  return letter && digit && !is_placeholder_value(value);
}

// Token formats are random, so only blatant placeholders are excluded: "ghp_xxxxxxxx..." (a run of 6 equal
// characters has probability ~1e-8 in a random token), "AKIAIOSFODNN7EXAMPLE" (AWS docs), "xoxb-your-token-here".
// Slack tokens always carry numeric workspace / user ids; without a digit it is a name like "xoxb-bot-token-name".
bool is_real_token(std::string_view token) {
  const std::string t = ascii_lowercase(token);
  for (const char* word : {"example", "your", "dummy", "sample"}) {
    if (contains(t, word)) return false;
  }
  int run = 1;
  for (size_t i = 1; i < t.size(); ++i) {
    run = t[i] == t[i - 1] ? run + 1 : 1;
    if (run >= 6) return false;
  }
  if (t.compare(0, 3, "xox") == 0) return std::any_of(t.begin(), t.end(), [](char c) { return is_digit(c); });
  return true;
}

// A PEM block is redacted when its body is key material: only base64, whitespace, PEM header characters and the
// quotes / "\n" escapes of a string literal, with at least one 40-character base64 run (real PEM lines are 64 long).
// This rejects placeholders ("...") and, importantly, code that merely mentions both markers, e.g. a PEM parser
//   if line == "-----BEGIN RSA PRIVATE KEY-----": ... elif line == "-----END RSA PRIVATE KEY-----":
// whose "body" is code that must survive.
bool is_pem_key_material(std::string_view block) {
  const size_t body_begin = block.find("-----", 5) + 5;  // past the BEGIN line's closing dashes
  const size_t body_end = block.rfind("-----END");
  int run = 0, longest = 0;
  for (size_t i = body_begin; i < body_end; ++i) {
    const unsigned char c = static_cast<unsigned char>(block[i]);
    const bool base64 = is_alnum(c) || c == '+' || c == '/' || c == '=';
    if (!base64 && !std::strchr(" \t\r\n\\\"',:-", c)) return false;
    run = base64 ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return longest >= 40;
}

// The name an assignment's separator at `sep` belongs to: walking back over spaces, then an optional `]` and quote
// (config["password"] = ..., "password": ...), then identifier characters and dots (self.db_password, DB_PASSWORD,
// $_ENV['API_KEY'] via its quote). Empty when the separator ends an operator (==, !=, <=) or follows a call.
struct Name {
  size_t begin = 0, end = 0;
  bool spaced = false;  // whitespace between the name and the separator
};

Name name_before(std::string_view text, size_t sep) {
  Name name;
  size_t i = sep;
  while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t')) --i;
  name.spaced = i < sep;
  if (i > 0 && text[i - 1] == ']') --i;
  if (i > 0 && (text[i - 1] == '"' || text[i - 1] == '\'')) --i;
  name.end = i;
  while (i > 0 && name.end - i < 128) {
    const unsigned char c = static_cast<unsigned char>(text[i - 1]);
    if (!is_word(c) && c != '.' && c != '-') break;
    --i;
  }
  name.begin = i;
  return name;
}

// A name in lower case without '_' and '-', so every spelling compares alike: DB_PASSWORD, clientSecret, api-key.
std::string squash(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c != '_' && c != '-') out += ascii_lower(c);
  }
  return out;
}

// Names that hold secrets: password, passwd, secret, api key, access token, auth token, private key, in any case and
// any spelling of the separator (DB_PASSWORD, clientSecret, apiKey, api-key, AUTH_TOKEN, private_key_pem).
bool is_secret_name(std::string_view name) {
  const std::string squashed = squash(name);
  for (const char* word : {"password", "passwd", "secret", "apikey", "accesstoken", "authtoken", "privatekey"}) {
    if (contains(squashed, word)) return true;
  }
  return false;
}

// An unquoted value is only trusted in configuration syntax: the name starts its line (after indentation and an
// optional "export "), and the separator is a tight NAME=value (.env, shell) or "name: value" (YAML). Code such as
// `conn = connect(password=pw_hash1)`, `password = hashed_pw2` or `f(password: token2)` never qualifies.
bool is_config_assignment(std::string_view text, const Name& name, std::string_view sep, size_t value_begin) {
  const size_t line = name.begin == 0 ? 0 : text.rfind('\n', name.begin - 1) + 1;  // npos + 1 == 0
  std::string_view prefix = text.substr(line, name.begin - line);
  while (!prefix.empty() && (prefix[0] == ' ' || prefix[0] == '\t')) prefix.remove_prefix(1);
  if (prefix.compare(0, 7, "export ") == 0) prefix.remove_prefix(7);
  if (!prefix.empty() || name.spaced || name.end != size_t(sep.data() - text.data())) return false;
  const bool tight = value_begin == size_t(sep.data() - text.data()) + sep.size();
  return (sep == "=" && tight) || (sep == ":" && !tight);
}

// ~/.aws/credentials writes `aws_secret_access_key = <40 base64 characters>`, spaces and all; accepted as is.
bool is_aws_secret_assignment(std::string_view name, std::string_view value) {
  return ends_with(squash(name), "awssecretaccesskey") && value.size() == 40 &&
         std::all_of(value.begin(), value.end(),
                     [](char c) { return is_alnum(static_cast<unsigned char>(c)) || c == '/' || c == '+'; });
}

// The value span of the current assignment match, or none.
Span assignment_value(std::string_view text, pcre2_match_data* md) {
  const Span sep = group(md, 1), quoted = group(md, 3), bare = group(md, 4);
  const Name name = name_before(text, sep.begin);
  const std::string_view name_text = text.substr(name.begin, name.end - name.begin);
  if (name_text.empty() || !is_secret_name(name_text)) return no_span();
  if (has(quoted)) return is_secret_value(text.substr(quoted.begin, quoted.end - quoted.begin)) ? quoted : no_span();
  const std::string_view value = text.substr(bare.begin, bare.end - bare.begin);
  if (is_aws_secret_assignment(name_text, value) && is_secret_value(value)) return bare;
  const std::string_view sep_text = text.substr(sep.begin, sep.end - sep.begin);
  return is_config_assignment(text, name, sep_text, bare.begin) && is_secret_value(value) ? bare : no_span();
}

Span whole_if(bool keep, pcre2_match_data* md) { return keep ? group(md, 0) : no_span(); }

Span pem_block(std::string_view text, pcre2_match_data* md) {
  const Span m = group(md, 0);
  return whole_if(is_pem_key_material(text.substr(m.begin, m.end - m.begin)), md);
}

// A URL password is held to the same standard as an assigned one; "postgres://user:${DB_PASSWORD}@db" is a template.
Span url_password(std::string_view text, pcre2_match_data* md) {
  const Span password = group(md, 1);
  return is_secret_value(text.substr(password.begin, password.end - password.begin)) ? password : no_span();
}

Span token(std::string_view text, pcre2_match_data* md) {
  const Span m = group(md, 0);
  return whole_if(is_real_token(text.substr(m.begin, m.end - m.begin)), md);
}

// One key family: its regex and what of a match to replace (no_span() when the match is a look-alike).
struct KeyRule {
  std::unique_ptr<Pattern> pattern;
  Span (*span)(std::string_view text, pcre2_match_data* md);
};

// ---------------------------------------------------------------------------------------------------------------------
// E-mail addresses. The regex matches "@domain" only: it starts with the literal '@', which the JIT finds with a fast
// byte search (a regex that starts at the local part would be tried at every identifier character of a file). The
// local part is then walked backwards by hand.
//   domain: dot-separated DNS labels (letters, digits, inner hyphens) ending in an alphabetic TLD of 2-63 letters,
//     all lower or all upper case ("user@host" without a dot, "python@2.7", "pkg@1.2.3" and Razor's
//     "model@Html.Raw" are not addresses), not followed by more word characters, '@' or ".<alnum>".
//   local part: RFC 5322 dot-atom characters in practice ([A-Za-z0-9._%+-]) and non-ASCII bytes (RFC 6531 allows
//     UTF-8 local parts; taking whole code points also keeps a name glued before an address from half-surviving),
//     1-64 bytes (RFC 5321) after dropping leading punctuation (".-+%"). "@decorator" and "@Override" have no local
//     part.
const char* const kEmailPattern =
    "@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+(?:[a-z]{2,63}|[A-Z]{2,63}))"
    "(?![A-Za-z0-9_@-]|\\.[A-Za-z0-9])";

bool is_local_char(unsigned char c) { return is_alnum(c) || c >= 0x80 || std::strchr("._%+-", c) != nullptr; }

// Start of the local part ending at `at` (the '@'), or npos when there is none.
size_t local_part_begin(std::string_view text, size_t at) {
  size_t b = at;
  while (b > 0 && is_local_char(static_cast<unsigned char>(text[b - 1]))) {
    if (at - b >= 64) return std::string_view::npos;  // longer than RFC 5321 allows: an identifier, not a mailbox
    --b;
  }
  while (b < at && std::strchr(".-+%", text[b]) != nullptr) ++b;  // "-x@list.txt" is an option, ".a" no mailbox
  return b < at ? b : std::string_view::npos;
}

// Addresses that identify no person:
//   git@host: the SSH user of git remotes (git@github.com:org/repo.git, git@gitlab.com, git@bitbucket.org);
//   reserved domains (RFC 2606 / RFC 6761): example.com/.net/.org and their subdomains, TLDs .example .test .invalid
//     .localhost, plus private-use names: .local (mDNS), .localdomain, .internal (ICANN 2024), .lan, .home, .corp,
//     .arpa (home.arpa, RFC 8375): documentation, local machines and service accounts on private networks;
//   file names with a density / variant suffix, "logo@2x.png", "icon@1.5x.jpg", "icons-64x64@2.tar", "-i@include.lst":
//     the TLD is a file extension that is no real TLD;
//   Python matrix products of attributes, "x@self.weight", "a@this.b".
bool is_personal_email(std::string_view local, std::string_view domain) {
  if (local == "git") return false;
  const std::string d = ascii_lowercase(domain);
  for (const char* reserved : {"example.com", "example.net", "example.org"}) {
    if (d == reserved || ends_with(d, std::string(".") + reserved)) return false;
  }
  const std::string tld = d.substr(d.rfind('.') + 1);
  for (const char* skip : {"example", "test", "invalid", "localhost", "local", "localdomain", "internal", "lan", "home",
                           "corp", "arpa",  // reserved and private-use names
                           "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "pdf", "tar", "gz",
                           "tgz", "xz", "txt", "log", "lst", "json", "yaml", "yml", "xml", "html", "htm", "css", "js",
                           "ts", "cmake", "lock"}) {  // file extensions
    if (tld == skip) return false;
  }
  return d.compare(0, 5, "self.") != 0 && d.compare(0, 5, "this.") != 0;
}

// ---------------------------------------------------------------------------------------------------------------------
// IPv4: four decimal octets 0-255 without leading zeros (Python's ipaddress rejects "01.2.3.4" since 3.9.5; BigCode
// validated every match with it). Not part of a longer dotted or alphanumeric run: no letter, digit, '_' or '.' just
// before (v1.2.3.4, 1.2.3.4.5 from its second number), no "<letter>-" before (linux-2.6.35.4, gcc-4.8.1.10; a
// range 52.14.200.7-52.14.200.9 still counts twice), no word character or ".<alnum>" just after (1.2.3.4.5,
// 1.2.3.4rc1, the reverse-DNS name 4.3.2.1.in-addr.arpa). A sentence's final '.' is fine.
const char* const kIpv4Pattern =
    "(?<![0-9A-Za-z_.])(?<![A-Za-z]-)"
    "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
    "(?![0-9A-Za-z_]|\\.[0-9A-Za-z])";

std::array<int, 4> ipv4_octets(std::string_view s) {
  std::array<int, 4> octets{};
  size_t k = 0;
  for (char c : s) {
    if (c == '.') ++k;
    else octets[k] = octets[k] * 10 + (c - '0');
  }
  return octets;
}

// Well-known public DNS resolvers are infrastructure, not personal data (BigCode's POPULAR_DNS_SERVERS,
// pii_redaction.py).
bool is_public_dns(const std::array<int, 4>& o) {
  static const std::array<int, 4> kServers[] = {
      {8, 8, 8, 8},       {8, 8, 4, 4},       {1, 1, 1, 1},          {1, 0, 0, 1},       {76, 76, 19, 19},
      {76, 223, 122, 150}, {9, 9, 9, 9},      {149, 112, 112, 112},  {208, 67, 222, 222}, {208, 67, 220, 220},
      {8, 26, 56, 26},    {8, 20, 247, 20},   {94, 140, 14, 14},     {94, 140, 15, 15}};
  return std::find(std::begin(kServers), std::end(kServers), o) != std::end(kServers);
}

// Only globally routable unicast addresses can point at a person's machine. Skipped, as Python's
// IPv4Address.is_private (what BigCode tested before replacing) plus multicast / shared space: 0/8 "this network",
// 10/8, 172.16/12, 192.168/16 (RFC 1918), 100.64/10 (carrier-grade NAT, RFC 6598), 127/8 loopback, 169.254/16
// link-local, 192.0.0/24 (IETF protocol assignments), 198.18/15 (benchmarking), 224/4 multicast, 240/4 reserved and
// 255.255.255.255 broadcast. Documentation ranges 192.0.2/24, 198.51.100/24, 203.0.113/24 (RFC 5737) are decided
// NOT redacted: they are reserved so that no one owns them, is_private counts them, so BigCode kept them too.
bool is_public_ipv4(const std::array<int, 4>& o) {
  const int a = o[0], b = o[1], c = o[2];
  if (a == 0 || a == 10 || a == 127 || a >= 224) return false;
  if ((a == 100 && (b & 0xC0) == 64) || (a == 169 && b == 254) || (a == 172 && (b & 0xF0) == 16)) return false;
  if ((a == 192 && b == 168) || (a == 192 && b == 0 && (c == 0 || c == 2))) return false;
  if ((a == 198 && (b == 18 || b == 19)) || (a == 198 && b == 51 && c == 100) || (a == 203 && b == 0 && c == 113)) {
    return false;
  }
  return !is_public_dns(o);
}

// Whether `word` occurs in `context` (lower case) at a word start: not preceded by a letter ("oid" but not "void").
bool has_word(const std::string& context, const char* word) {
  for (size_t at = context.find(word); at != std::string::npos; at = context.find(word, at + 1)) {
    if (at == 0 || !is_alpha(static_cast<unsigned char>(context[at - 1]))) return true;
  }
  return false;
}

// Dotted numbers that are not addresses: versions, numbered sections and object identifiers. Two rules:
//   a naming word in the 20 bytes before the match, any case: "version" (__version__ = "52.14.200.7", Version:; the
//     simple form of BigCode's observation that such quads are versions), "section", and "oid" / "ObjectIdentifier"
//     (X.509 OIDs, ObjectIdentifier("2.5.4.44"));
//   all four octets below 32 (1.2.3.4, 23.2.2.1, 5.2.1.10: the clause numbers of the C++ standard that libstdc++
//     quotes in hundreds of comments, versions, short OIDs), unless "dns" or "server" is within 100 bytes. This widens
//     BigCode's filter_versions (all four octets single digits, with the same dns/server exception) after seeing
//     /usr/include: a real address has all octets below 32 with probability ~(1/8)^3 given its first one. The words
//     count at word starts only ("observer" is no server).
bool is_numbered_reference(std::string_view text, size_t begin, size_t end, const std::array<int, 4>& octets) {
  const size_t from = begin >= 20 ? begin - 20 : 0;
  const std::string before = ascii_lowercase(text.substr(from, begin - from));
  for (const char* word : {"version", "section", "objectidentifier", "oid"}) {
    if (has_word(before, word)) return true;
  }
  if (!std::all_of(octets.begin(), octets.end(), [](int o) { return o < 32; })) return false;
  const size_t ctx = begin >= 100 ? begin - 100 : 0;
  const std::string around = ascii_lowercase(text.substr(ctx, end + 100 - ctx));
  return !has_word(around, "dns") && !has_word(around, "server") && !has_word(around, "nameserver");
}

// ---------------------------------------------------------------------------------------------------------------------
// IPv6. Found without a regex: a regex for IPv6's compressed forms (BigCode's has 10 alternatives) would start at every
// hex letter of a file; instead every ':' (memchr) is widened to its run of hex digits and colons, which is then
// parsed exactly. A candidate is an address when it is
//   not glued to an identifier or a dotted number: no [G-Zg-z_.] right before or after (std::vector, a::b::c,
//     Foo::bar, and the IPv4-suffixed form ::ffff:1.2.3.4 whose IPv4 part the IPv4 pass redacts alone); a single
//     leading or trailing ':' is punctuation ("host:2a03:...", "addr 2a03:...::1: ok") and is dropped;
//   valid: at most one "::", groups of 1-4 hex digits, 8 groups without "::" and at most 7 with it (so times 12:34:56
//     and MAC addresses 00:1a:2b:3c:4d:5e are not), at least 3 groups written (a Python slice x[2000::10] is not);
//   public: global unicast 2000::/3, outside the documentation prefixes 2001:db8::/32 and 3fff::/20 (RFC 3849,
//     RFC 9637), the IETF protocol block 2001::/23 (Python's is_private counts it) and well-known resolvers. This
//     drops ::, ::1, fe80::/10 link-local, fc00::/7 unique-local, ff00::/8 multicast, IPv4-mapped ::ffff:0:0/96 and
//     the unassigned space where C++ scopes made of hex letters live.
using Ipv6 = std::array<uint16_t, 8>;

int hex_value(char c) { return is_digit(static_cast<unsigned char>(c)) ? c - '0' : ascii_lower(c) - 'a' + 10; }

// Parses "a:b:c" (the run holds only hex digits and colons) into `out`; the number of groups, or -1 on an empty group,
// a group of more than 4 digits or more than 8 groups.
int parse_groups(std::string_view part, Ipv6& out) {
  if (part.empty()) return 0;
  int n = 0;
  for (size_t i = 0;; ++n) {
    const size_t colon = std::min(part.find(':', i), part.size());
    if (n == 8 || colon == i || colon - i > 4) return -1;
    uint16_t value = 0;
    for (char c : part.substr(i, colon - i)) value = uint16_t(value * 16 + hex_value(c));
    out[size_t(n)] = value;
    if (colon == part.size()) return n + 1;
    i = colon + 1;
  }
}

// Parses a full or "::"-compressed address into `address`; `written` is the number of groups spelled out.
bool parse_ipv6(std::string_view s, Ipv6& address, int& written) {
  const size_t dc = s.find("::");
  if (dc == std::string_view::npos) {
    written = parse_groups(s, address);
    return written == 8;
  }
  if (s.find("::", dc + 1) != std::string_view::npos) return false;
  Ipv6 head{}, tail{};
  const int h = parse_groups(s.substr(0, dc), head), t = parse_groups(s.substr(dc + 2), tail);
  written = h + t;
  if (h < 0 || t < 0 || written > 7) return false;
  address.fill(0);
  std::copy(head.begin(), head.begin() + h, address.begin());
  std::copy(tail.begin(), tail.begin() + t, address.end() - t);
  return true;
}

bool is_public_ipv6(const Ipv6& a) {
  if (a[0] < 0x2000 || a[0] > 0x3fff) return false;           // outside global unicast 2000::/3
  if (a[0] == 0x2001 && a[1] < 0x0200) return false;           // IETF protocol assignments 2001::/23 (RFC 2928)
  if (a[0] == 0x2001 && a[1] == 0x0db8) return false;          // documentation, RFC 3849
  if (a[0] == 0x3fff && a[1] < 0x1000) return false;           // documentation, RFC 9637
  static const Ipv6 kResolvers[] = {{0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888},   // Google
                                    {0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8844},
                                    {0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111},   // Cloudflare
                                    {0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1001},
                                    {0x2620, 0x00fe, 0, 0, 0, 0, 0, 0x00fe},        // Quad9
                                    {0x2620, 0x00fe, 0, 0, 0, 0, 0, 0x0009}};
  return std::find(std::begin(kResolvers), std::end(kResolvers), a) == std::end(kResolvers);
}

bool is_hex_or_colon(unsigned char c) { return is_hex(c) || c == ':'; }
bool glues(unsigned char c) { return is_word(c) || c == '.'; }  // hex digits and ':' are already inside the run

void find_ipv6(std::string_view text, const std::vector<Span>& taken, std::vector<Span>& found) {
  const char* base = text.data();
  size_t pos = 0;
  while (pos < text.size()) {
    const void* hit = std::memchr(base + pos, ':', text.size() - pos);
    if (!hit) break;
    size_t b = size_t(static_cast<const char*>(hit) - base), e = b + 1;
    while (b > 0 && is_hex_or_colon(static_cast<unsigned char>(text[b - 1]))) --b;
    while (e < text.size() && is_hex_or_colon(static_cast<unsigned char>(text[e]))) ++e;
    pos = e;
    if (text[b] == ':' && (e - b < 2 || text[b + 1] != ':')) ++b;
    if (e - b >= 2 && text[e - 1] == ':' && text[e - 2] != ':') --e;
    if ((b > 0 && glues(static_cast<unsigned char>(text[b - 1]))) ||
        (e < text.size() && glues(static_cast<unsigned char>(text[e])))) {
      continue;
    }
    Ipv6 address;
    int written = 0;
    if (e > b && parse_ipv6(text.substr(b, e - b), address, written) && written >= 3 && is_public_ipv6(address) &&
        !overlaps(taken, b, e)) {
      found.push_back({b, e});
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------------

struct PiiRedactor::Patterns {
  std::vector<KeyRule> keys;
  Pattern email{kEmailPattern, "e-mail"};
  Pattern ipv4{kIpv4Pattern, "IPv4"};

  Patterns() {
    keys.push_back({std::make_unique<Pattern>(kPemPattern, "PEM key"), pem_block});
    for (const char* p : kTokenPatterns) {
      keys.push_back({std::make_unique<Pattern>(std::string(kNotAfterWord) + p, "token"), token});
    }
    keys.push_back({std::make_unique<Pattern>(kUrlPasswordPattern, "URL password"), url_password});
    keys.push_back({std::make_unique<Pattern>(kAssignmentPattern, "secret assignment"), assignment_value});
  }
};

PiiRedactor::PiiRedactor(PiiConfig config) : config_(std::move(config)), patterns_(std::make_unique<Patterns>()) {}

PiiRedactor::~PiiRedactor() = default;

namespace {

struct MatchData {
  pcre2_match_data* md = pcre2_match_data_create(5, nullptr);  // group 0 + the assignment pattern's 4 groups
  ~MatchData() { pcre2_match_data_free(md); }
};

// Moves `found` into the sorted `taken` as spans of `kind`, and counts them.
void accept(std::vector<Span>& found, Kind kind, std::vector<Span>& taken, int64_t& count) {
  count += int64_t(found.size());
  for (Span& s : found) s.kind = kind;
  taken.insert(taken.end(), found.begin(), found.end());
  std::sort(taken.begin(), taken.end());
  found.clear();
}

void find_keys(const std::vector<KeyRule>& rules, std::string_view text, pcre2_match_data* md,
               std::vector<Span>& taken, int64_t& count) {
  std::vector<Span> found;
  for (const KeyRule& rule : rules) {
    size_t start = 0;
    while (rule.pattern->find(text, start, md)) {
      const Span whole = group(md, 0), s = rule.span(text, md);
      if (has(s) && !overlaps(taken, s.begin, s.end)) found.push_back(s);
      // a rejected match may hide a real one inside it (a PEM parser's BEGIN marker, then a real block)
      start = has(s) ? whole.end : whole.begin + 1;
    }
    accept(found, Kind::key, taken, count);
  }
}

void find_emails(const Pattern& email, std::string_view text, pcre2_match_data* md, const std::vector<Span>& taken,
                 std::vector<Span>& found) {
  size_t start = 0;
  while (email.find(text, start, md)) {
    const Span at = group(md, 0), domain = group(md, 1);
    start = at.end;  // the domain holds no '@', so no other address starts inside it
    const size_t b = local_part_begin(text, at.begin);
    if (b != std::string_view::npos &&
        is_personal_email(text.substr(b, at.begin - b), text.substr(domain.begin, domain.end - domain.begin)) &&
        !overlaps(taken, b, at.end)) {
      found.push_back({b, at.end});
    }
  }
}

void find_ipv4(const Pattern& ipv4, std::string_view text, pcre2_match_data* md, const std::vector<Span>& taken,
               std::vector<Span>& found) {
  size_t start = 0;
  while (ipv4.find(text, start, md)) {
    const Span m = group(md, 0);
    start = m.end;
    const std::array<int, 4> octets = ipv4_octets(text.substr(m.begin, m.end - m.begin));
    if (is_public_ipv4(octets) && !is_numbered_reference(text, m.begin, m.end, octets) &&
        !overlaps(taken, m.begin, m.end)) {
      found.push_back(m);
    }
  }
}

}  // namespace

std::string PiiRedactor::redact(std::string_view text, PiiCounts& counts) const {
  const bool emails = config_.emails && text.find('@') != std::string_view::npos;
  const bool ipv4 = config_.ip_addresses && text.find('.') != std::string_view::npos;
  const bool ipv6 = config_.ip_addresses && text.find(':') != std::string_view::npos;
  if (!config_.keys && !emails && !ipv4 && !ipv6) return std::string(text);

  MatchData match;
  std::vector<Span> taken, found;
  PiiCounts local;
  if (config_.keys) find_keys(patterns_->keys, text, match.md, taken, local.keys);
  if (emails) find_emails(patterns_->email, text, match.md, taken, found);
  accept(found, Kind::email, taken, local.emails);
  if (ipv6) find_ipv6(text, taken, found);
  accept(found, Kind::ip, taken, local.ip_addresses);
  if (ipv4) find_ipv4(patterns_->ipv4, text, match.md, taken, found);
  accept(found, Kind::ip, taken, local.ip_addresses);
  if (taken.empty()) return std::string(text);

  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (const Span& s : taken) {
    out.append(text, pos, s.begin - pos);
    out += s.kind == Kind::key ? config_.key_placeholder
                               : s.kind == Kind::email ? config_.email_placeholder : config_.ip_placeholder;
    pos = s.end;
  }
  out.append(text, pos, std::string_view::npos);
  counts += local;
  return out;
}

}  // namespace granite
