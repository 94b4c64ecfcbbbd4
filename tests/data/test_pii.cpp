// PII redaction: each kind in realistic code, each deliberate exception left alone, and the mechanics (switches,
// counts, overlaps, UTF-8, threads).
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "granite/data/pii.h"

using granite::PiiConfig;
using granite::PiiCounts;
using granite::PiiRedactor;

namespace {

const PiiRedactor& redactor() {
  static const PiiRedactor r;
  return r;
}

std::string redact(const std::string& text, PiiCounts* counts = nullptr) {
  PiiCounts local;
  std::string out = redactor().redact(text, counts ? *counts : local);
  return out;
}

// Every case here must come back byte-for-byte with nothing counted.
void check_untouched(const std::vector<std::string>& cases) {
  for (const std::string& text : cases) {
    INFO("text: " << text);
    PiiCounts counts;
    CHECK(redactor().redact(text, counts) == text);
    CHECK(counts.total() == 0);
  }
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// A private key body: 64-character base64 lines (made up, not a key).
const std::string kPemBody =
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi4Bq0pLz8fRk2nW5vYt1sXcU7e\n"
    "HdGjKqP0aVwL3bN9cR5tY7uI1oP2aS4dF6gH8jK0lZ2xC4vB6nM8qW0eR2tY4uI6\n"
    "oP8aS0dF2gH4jK6lZ8xC0vB2nM4qW6eR8tY0uI2oP4aS6dF8gH0jK2lZ4xC6vB8n\n"
    "M0qW2eR4tY6uI8oP0aS2dF4gH6jK8lZ0xC2vB4nM6qW8eR0tY2uI4oP6aS8dF0g==\n";

}  // namespace

TEST_CASE("e-mail addresses in code are replaced, the rest kept byte for byte", "[data][pii]") {
  PiiCounts counts;
  CHECK(redact("__author__ = \"Jane Doe <jane.doe@acme-corp.com>\"\n", &counts) ==
        "__author__ = \"Jane Doe <<EMAIL>>\"\n");
  CHECK(redact("const to = 'ops+alerts@mail.acme.io';  // pager\n", &counts) == "const to = '<EMAIL>';  // pager\n");
  CHECK(redact("/* Maintainer: Ivan Petrov (ivan_petrov@yandex.ru), 2019 */", &counts) ==
        "/* Maintainer: Ivan Petrov (<EMAIL>), 2019 */");
  CHECK(redact("<a href=\"mailto:Support@Widgets.CO.UK\">mail us</a>", &counts) ==
        "<a href=\"mailto:<EMAIL>\">mail us</a>");
  CHECK(redact("maintainers:\n  - alice@team.dev\n  - bob.smith@uni-heidelberg.de.\n", &counts) ==
        "maintainers:\n  - <EMAIL>\n  - <EMAIL>.\n");  // a sentence's final dot stays
  CHECK(counts.emails == 6);
  CHECK(counts.total() == 6);
}

TEST_CASE("e-mail look-alikes are left alone", "[data][pii]") {
  check_untouched({
      "git clone git@github.com:org/repo.git",         // git SSH remotes are no person
      "url = git@gitlab.com:group/project.git",
      "contact: someone@example.com, ops@mail.example.org, x@example.net",  // documentation domains
      "root@localhost and admin@db.internal and pi@raspberry.local",       // local machines
      "@decorator\ndef f(): pass",                                        // no local part
      "@pytest.mark.parametrize('x', [1, 2])",
      "ssh user@host",                                                    // no dotted domain
      "background: url(logo@2x.png); icon@1.5x.jpg",                      // image density suffixes
      "y = x@self.weight.T",                                              // a matrix product
      "pip install requests@2.31.0 python@2.7",                           // versions, no alphabetic TLD
      "@Html.Raw(model@Html.Raw)",                                        // mixed-case TLD: code
      "a@b.c",                                                            // one-letter TLD
  });
}

TEST_CASE("public IPv4 addresses are replaced, octets, context and ranges decide", "[data][pii]") {
  PiiCounts counts;
  CHECK(redact("API_HOST = \"52.14.200.7\"\n", &counts) == "API_HOST = \"<IP_ADDRESS>\"\n");
  CHECK(redact("upstream:\n  - 34.120.54.55:443\n", &counts) == "upstream:\n  - <IP_ADDRESS>:443\n");
  CHECK(redact("allow 81.2.69.142/32;\ndeny all;", &counts) == "allow <IP_ADDRESS>/32;\ndeny all;");
  CHECK(redact("ssh deploy@203.0.114.9", &counts) == "ssh deploy@<IP_ADDRESS>");  // not an e-mail, an IP
  CHECK(redact("fetch('http://104.16.132.229/api')", &counts) == "fetch('http://<IP_ADDRESS>/api')");
  CHECK(redact("block 52.14.200.7-52.14.200.9.", &counts) == "block <IP_ADDRESS>-<IP_ADDRESS>.");
  // small octets are versions and section numbers, except next to "dns" / "server"
  CHECK(redact("dns_fallback = \"4.2.2.1\"", &counts) == "dns_fallback = \"<IP_ADDRESS>\"");
  CHECK(counts.ip_addresses == 8);
  CHECK(counts.total() == 8);
}

TEST_CASE("non-public IPv4 addresses and dotted numbers are left alone", "[data][pii]") {
  check_untouched({
      "10.0.0.1 172.16.5.4 172.31.255.255 192.168.1.1",  // private, RFC 1918
      "127.0.0.1 0.0.0.0 169.254.169.254",               // loopback, this network, link-local (cloud metadata)
      "100.64.1.1 198.18.0.7 192.0.0.9",                 // carrier-grade NAT, benchmarking, IETF
      "224.0.0.251 239.255.255.250 240.1.2.3 255.255.255.255",  // multicast, reserved, broadcast
      "192.0.2.10 198.51.100.7 203.0.113.5",             // documentation ranges (RFC 5737): decided not redacted
      "nameserver 8.8.8.8\nnameserver 1.1.1.1 208.67.222.222",  // well-known public resolvers
      "v1.2.3.4 and 52.14.200.7.5 and 1.52.14.200.7",    // part of a longer dotted number
      "__version__ = \"52.14.200.7\"",                   // "version" within 20 bytes before
      "Version: 52.14.200.77",
      "256.1.1.1 52.14.200.256 01.02.03.04 52.014.200.7",  // not an address: octet > 255, leading zeros
      "linux-2.6.35.40 gcc-4.8.1.100",                   // a name's version
      "// 23.2.2.1 construct/copy/destroy [27.6.1.3]",   // C++ standard clauses: all octets below 32
      "oid = ObjectIdentifier(\"2.5.4.44\")",            // X.509 object identifier
      "52.14.200.7a 4.3.2.52.in-addr.arpa",              // glued to a word, reverse DNS
  });
}

TEST_CASE("public IPv6 addresses are replaced, scopes, times and private ranges are not", "[data][pii]") {
  PiiCounts counts;
  CHECK(redact("peer = \"2a03:2880:f12f:83:face:b00c:0:25de\"", &counts) == "peer = \"<IP_ADDRESS>\"");
  CHECK(redact("listen [2a01:4f8:c17:b8f::2]:80;", &counts) == "listen [<IP_ADDRESS>]:80;");
  CHECK(redact("AAAA 2606:4700::6810:84e5 ; cdn", &counts) == "AAAA <IP_ADDRESS> ; cdn");
  CHECK(redact("host:2A00:1450:4001:81B::200E", &counts) == "host:<IP_ADDRESS>");  // upper case, ':' before
  CHECK(redact("mapped ::ffff:52.14.200.7", &counts) == "mapped ::ffff:<IP_ADDRESS>");  // the IPv4 pass takes it
  CHECK(counts.ip_addresses == 5);
  check_untouched({
      "std::vector<int> v; a::b::c(); Foo::bar; dead::beef",  // C++ scopes
      "::1 :: [::]:8080 fe80::1ff:fe23:4567:890a%eth0",      // loopback, unspecified, link-local
      "fd12:3456:789a::1 fc00::7 ff02::1:ff00:1",            // unique-local, multicast
      "2001:db8::1 2001:db8:85a3::8a2e:370:7334 3fff:12::9",  // documentation (RFC 3849, RFC 9637)
      "2001:4860:4860::8888 2606:4700:4700::1111",           // public resolvers
      "at 12:34:56 mac 00:1a:2b:3c:4d:5e",                   // times, MAC addresses
      "x[2000::10] y[2a03::]",                               // Python slices: fewer than 3 groups written
      "2a03:2880::f12f::1 2a03:2880:f12f:83:face:b00c:0:25de:1 2a03:28800::1:2",  // two "::", 9 groups, 5 digits
      "zz2a03:2880:f12f::1 2a03:2880:f12f::1x 2a03:2880:f12f::1.5",  // glued to a word or a dotted number
  });
}

TEST_CASE("well-known token formats are replaced whole", "[data][pii]") {
  PiiCounts counts;
  CHECK(redact("AWS_ACCESS_KEY_ID=AKIAZ3MSJV4WSTFGCK7Q\n", &counts) == "AWS_ACCESS_KEY_ID=<KEY>\n");
  CHECK(redact("const gh = \"ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5\";", &counts) == "const gh = \"<KEY>\";");
  CHECK(redact("token: github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789", &counts) == "token: <KEY>");
  CHECK(redact("SLACK_BOT=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", &counts) == "SLACK_BOT=<KEY>");
  CHECK(redact("maps.init('AIzaSyD4iE2xVSpkLLOXoyqT-RuPwURN3ddScAI')", &counts) == "maps.init('<KEY>')");
  CHECK(redact("Stripe.api_key = sk_live_4eC39HqLyjWDarjtT1zdp7dc", &counts) == "Stripe.api_key = <KEY>");
  CHECK(redact("openai.api_key = 'sk-3xAmPl3k3yT0k3nW1thF0rtyE1ghtCh4rsAbCdEfGhIjKlMn'", &counts) ==
        "openai.api_key = '<KEY>'");
  CHECK(redact("OPENAI_API_KEY=sk-proj-Ab3De5Gh7Jk9Mn1Pq3St5Vw7Yz9Bc1Ef3Hj5Lm7Np9", &counts) == "OPENAI_API_KEY=<KEY>");
  CHECK(redact("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
               "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n",
               &counts) == "Authorization: Bearer <KEY>\n");
  CHECK(counts.keys == 9);
  CHECK(counts.total() == 9);
}

TEST_CASE("PEM private keys are replaced as one block, parsers and placeholders are not", "[data][pii]") {
  PiiCounts counts;
  const std::string pem = "-----BEGIN RSA PRIVATE KEY-----\n" + kPemBody + "-----END RSA PRIVATE KEY-----";
  CHECK(redact("KEY = \"\"\"" + pem + "\n\"\"\"\nprint(KEY)\n", &counts) ==
        "KEY = \"\"\"<KEY>\n\"\"\"\nprint(KEY)\n");
  // inside a string literal with \n escapes, as in JSON service-account files
  const std::string json =
      "{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\n"
      "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\\n-----END PRIVATE KEY-----\\n\", "
      "\"type\": \"service_account\"}";
  CHECK(redact(json, &counts) == "{\"private_key\": \"<KEY>\\n\", \"type\": \"service_account\"}");
  CHECK(counts.keys == 2);
  check_untouched({
      "if line == \"-----BEGIN RSA PRIVATE KEY-----\":\n    inside = True\n"
      "elif line == \"-----END RSA PRIVATE KEY-----\":\n    inside = False\n",
      "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n-----END OPENSSH PRIVATE KEY-----\n",
      "-----BEGIN PUBLIC KEY-----\n" + kPemBody + "-----END PUBLIC KEY-----\n",  // public keys are no secret
  });
}

TEST_CASE("secrets assigned to secret-sounding names: the value goes, name and quotes stay", "[data][pii]") {
  PiiCounts counts;
  CHECK(redact("DB_PASSWORD = \"hunter2x9abc\"\n", &counts) == "DB_PASSWORD = \"<KEY>\"\n");              // Python
  CHECK(redact("const clientSecret = 'f3a9c1e7b2d84d6a';", &counts) == "const clientSecret = '<KEY>';");  // JS
  CHECK(redact("static const char* api_key = \"a8f9e2b1c4d7e6f5\";", &counts) ==
        "static const char* api_key = \"<KEY>\";");  // C
  CHECK(redact("{\"username\": \"svc\", \"password\": \"Tr0ub4dor&3x\"}", &counts) ==
        "{\"username\": \"svc\", \"password\": \"<KEY>\"}");  // JSON
  CHECK(redact("config[\"db_password\"] = \"Zq8vN2pL5wK1\"", &counts) == "config[\"db_password\"] = \"<KEY>\"");
  CHECK(redact("$settings = ['auth_token' => 'c0ffee42deadbeef'];", &counts) ==
        "$settings = ['auth_token' => '<KEY>'];");  // PHP
  CHECK(redact("conn := Connect(Password: \"pässwört2024\")", &counts) == "conn := Connect(Password: \"<KEY>\")");
  CHECK(redact("db:\n  user: app\n  password: s3cr3tPw9\n", &counts) == "db:\n  user: app\n  password: <KEY>\n");
  CHECK(redact("export SECRET_KEY=9f8e7d6c5b4a\r\nDEBUG=0\r\n", &counts) == "export SECRET_KEY=<KEY>\r\nDEBUG=0\r\n");
  CHECK(redact("[default]\naws_access_key_id = AKIAZ3MSJV4WSTFGCK7Q\n"
               "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8xLpW2vT\n",
               &counts) == "[default]\naws_access_key_id = <KEY>\naws_secret_access_key = <KEY>\n");
  CHECK(redact("DATABASE_URL=postgres://app:Sup3rS3cret99@db.prod.acme.io:5432/app", &counts) ==
        "DATABASE_URL=postgres://app:<KEY>@db.prod.acme.io:5432/app");  // the password, not an "e-mail"
  CHECK(counts.keys == 12);
  CHECK(counts.total() == 12);
}

TEST_CASE("placeholders, prose, comparisons and code are not secrets", "[data][pii]") {
  check_untouched({
      "password = \"xxxxxxxx\"\napi_key = \"********\"",        // no letter + digit mix
      "API_KEY = \"<your-api-key>\"\nsecret: ${APP_SECRET_1}",   // templates
      "password = \"changeme123\"\nPASSWORD = 'password123'",    // decided: default / test credentials
      "api_key: \"{{ vault_api_key_2 }}\"\ndb_password = '%(pw)s1abc'",
      "access_token = 'your_token_here_123'\nsecret = 'EXAMPLE-1234-KEY'",
      "password_prompt = \"Enter password 2 times\"",            // prose has spaces
      "PASSWORD_MIN_LENGTH = \"12345678\"\nsecret_header = 'Authorization'",  // one character class
      "if password == \"abc12345x\":\n    pass",                 // a comparison
      "password = hashed_pw2\nconnect(password=pw_hash1)",       // unquoted outside config syntax
      "password = \"ab1\"",                                      // too short
      "secret_file = '/run/keys/db_pw1'\napi_key_url = \"https://vault.io/k1\"",  // paths and URLs
      "postgres://app:${DB_PASSWORD}@db:5432/app",               // a templated URL password
      "AKIAIOSFODNN7EXAMPLE ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",  // AWS docs key, a filler token
      "xoxb-your-bot-token-here sk-1234 disk-ab3de5gh7jk9mn1pq3st5vw7yz9bc1ef3hj5lm7np9qr1st3",  // short, glued
  });
}

TEST_CASE("each kind can be switched off, and placeholders are configurable", "[data][pii]") {
  const std::string text = "mail a.b@acme.io from 52.14.200.7 with password = \"hunter2x9abc\"";
  {
    PiiConfig config;
    config.emails = false;
    PiiCounts counts;
    CHECK(PiiRedactor(config).redact(text, counts) ==
          "mail a.b@acme.io from <IP_ADDRESS> with password = \"<KEY>\"");
    CHECK(counts.emails == 0);
  }
  {
    PiiConfig config;
    config.ip_addresses = false;
    PiiCounts counts;
    CHECK(PiiRedactor(config).redact(text, counts) == "mail <EMAIL> from 52.14.200.7 with password = \"<KEY>\"");
    CHECK(counts.ip_addresses == 0);
  }
  {
    PiiConfig config;
    config.keys = false;
    PiiCounts counts;
    CHECK(PiiRedactor(config).redact(text, counts) ==
          "mail <EMAIL> from <IP_ADDRESS> with password = \"hunter2x9abc\"");
    CHECK(counts.keys == 0);
  }
  {
    PiiConfig config;
    config.emails = config.ip_addresses = config.keys = false;
    PiiCounts counts;
    CHECK(PiiRedactor(config).redact(text, counts) == text);
    CHECK(counts.total() == 0);
  }
  {
    PiiConfig config;
    config.email_placeholder = "[email]";
    config.ip_placeholder = "0.0.0.0";
    config.key_placeholder = "";
    PiiCounts counts;
    CHECK(PiiRedactor(config).redact(text, counts) == "mail [email] from 0.0.0.0 with password = \"\"");
    CHECK(counts.emails == 1);
    CHECK(counts.ip_addresses == 1);
    CHECK(counts.keys == 1);
  }
}

TEST_CASE("counts accumulate across calls, empty and PII-free text pass through", "[data][pii]") {
  PiiCounts counts;
  CHECK(redact("", &counts).empty());
  CHECK(redact("int main() { return 0; }\n", &counts) == "int main() { return 0; }\n");
  redact("x@acme.io", &counts);
  redact("y@acme.io z@acme.io", &counts);
  CHECK(counts.emails == 3);
  PiiCounts more;
  more.keys = 2;
  counts += more;
  CHECK(counts.total() == 5);
}

TEST_CASE("overlaps: keys first, then e-mails, then IPs, nothing inside a replaced span", "[data][pii]") {
  PiiCounts counts;
  // the password value contains an address: one key, no e-mail
  CHECK(redact("smtp_password = \"adm1n@corp-mail.io\"", &counts) == "smtp_password = \"<KEY>\"");
  // a token assigned to a secret name is one key, not two
  CHECK(redact("API_KEY = \"AKIAZ3MSJV4WSTFGCK7Q\"", &counts) == "API_KEY = \"<KEY>\"");
  // an IP inside a replaced key value stays inside it
  CHECK(redact("secret = \"52.14.200.7/tok3n\"", &counts) == "secret = \"<KEY>\"");
  CHECK(counts.keys == 3);
  CHECK(counts.emails == 0);
  CHECK(counts.ip_addresses == 0);
}

TEST_CASE("multi-byte UTF-8 around and inside matches is preserved", "[data][pii]") {
  PiiCounts counts;
  const std::string out = redact(
      "// 作者：李雷 <lilei@qq.com> 🚀\n"
      "# Jörg Frings-Fürst <jörg@frings.de>\n"
      "服务器地址52.14.200.7，端口 8080\n"
      "пароль = password = \"Пароль2024\" # ключ\n"
      "peer «2a03:2880:f12f:83:face:b00c:0:25de» ok\n",
      &counts);
  CHECK(out ==
        "// 作者：李雷 <<EMAIL>> 🚀\n"
        "# Jörg Frings-Fürst <<EMAIL>>\n"
        "服务器地址<IP_ADDRESS>，端口 8080\n"
        "пароль = password = \"<KEY>\" # ключ\n"
        "peer «<IP_ADDRESS>» ok\n");
  CHECK(valid_utf8(out));
  CHECK(counts.emails == 2);
  CHECK(counts.ip_addresses == 2);
  CHECK(counts.keys == 1);
}

namespace {

// A settings module with every kind, and look-alikes between them.
const std::string kSettings =
    "# -*- coding: utf-8 -*-\n"
    "\"\"\"Deployment settings. Questions: Søren Kierkegaard <soren.k@nordic-data.dk>.\"\"\"\n"
    "__version__ = \"3.52.14.1\"\n"
    "import os\n"
    "\n"
    "ADMINS = [(\"Ops\", \"ops@nordic-data.dk\"), (\"Docs\", \"docs@example.com\")]\n"
    "ALLOWED_HOSTS = [\"52.14.200.7\", \"10.0.0.12\", \"localhost\", \"127.0.0.1\"]\n"
    "IPV6_PEER = \"2a01:4f8:c17:b8f::2\"  # std::string in the C++ client\n"
    "SECRET_KEY = \"django-insecure-7f3k9x2m5q8w1e4r\"\n"
    "AWS_ACCESS_KEY_ID = \"AKIAZ3MSJV4WSTFGCK7Q\"\n"
    "DATABASES = {\"default\": {\"HOST\": \"db.internal\", \"PASSWORD\": os.environ.get(\"DB_PASSWORD\", \"\")}}\n"
    "EMAIL_HOST_PASSWORD = \"changeme123\"\n"
    "SIGNING_KEY = \"\"\"-----BEGIN EC PRIVATE KEY-----\n" +
    kPemBody +
    "-----END EC PRIVATE KEY-----\"\"\"\n"
    "@login_required\n"
    "def view(request): return render(request, \"logo@2x.png\")\n";

const std::string kSettingsRedacted =
    "# -*- coding: utf-8 -*-\n"
    "\"\"\"Deployment settings. Questions: Søren Kierkegaard <<EMAIL>>.\"\"\"\n"
    "__version__ = \"3.52.14.1\"\n"
    "import os\n"
    "\n"
    "ADMINS = [(\"Ops\", \"<EMAIL>\"), (\"Docs\", \"docs@example.com\")]\n"
    "ALLOWED_HOSTS = [\"<IP_ADDRESS>\", \"10.0.0.12\", \"localhost\", \"127.0.0.1\"]\n"
    "IPV6_PEER = \"<IP_ADDRESS>\"  # std::string in the C++ client\n"
    "SECRET_KEY = \"<KEY>\"\n"
    "AWS_ACCESS_KEY_ID = \"<KEY>\"\n"
    "DATABASES = {\"default\": {\"HOST\": \"db.internal\", \"PASSWORD\": os.environ.get(\"DB_PASSWORD\", \"\")}}\n"
    "EMAIL_HOST_PASSWORD = \"changeme123\"\n"
    "SIGNING_KEY = \"\"\"<KEY>\"\"\"\n"
    "@login_required\n"
    "def view(request): return render(request, \"logo@2x.png\")\n";

}  // namespace

TEST_CASE("a realistic settings file with several kinds at once", "[data][pii]") {
  PiiCounts counts;
  CHECK(redact(kSettings, &counts) == kSettingsRedacted);
  CHECK(counts.emails == 2);
  CHECK(counts.ip_addresses == 2);
  CHECK(counts.keys == 3);
  CHECK(valid_utf8(redact(kSettings)));
}

TEST_CASE("redact is safe from 4 threads at once and deterministic", "[data][pii]") {
  const PiiRedactor shared;
  std::vector<std::string> inputs;
  for (int i = 0; i < 16; ++i) {
    inputs.push_back(kSettings + "# file " + std::to_string(i) + " owner" + std::to_string(i) + "@acme.io\n" +
                     "host = \"52.14.200." + std::to_string(100 + i) + "\"\n");
  }
  std::vector<std::string> expected;
  PiiCounts serial;
  for (const std::string& in : inputs) expected.push_back(shared.redact(in, serial));

  constexpr int kThreads = 4, kRounds = 50;
  std::vector<std::vector<std::string>> outputs(kThreads);
  std::vector<PiiCounts> counts(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        for (size_t i = 0; i < inputs.size(); ++i) {
          std::string out = shared.redact(inputs[(i + size_t(t)) % inputs.size()], counts[size_t(t)]);
          if (round == kRounds - 1) outputs[size_t(t)].push_back(std::move(out));
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      CHECK(outputs[size_t(t)][i] == expected[(i + size_t(t)) % inputs.size()]);
    }
    CHECK(counts[size_t(t)].emails == kRounds * serial.emails);
    CHECK(counts[size_t(t)].ip_addresses == kRounds * serial.ip_addresses);
    CHECK(counts[size_t(t)].keys == kRounds * serial.keys);
  }
  CHECK(serial.emails == 16 * 3);
  CHECK(serial.ip_addresses == 16 * 3);
  CHECK(serial.keys == 16 * 3);
}
