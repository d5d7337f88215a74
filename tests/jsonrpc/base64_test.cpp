// base64 (base64.hpp): RFC 4648 vectors, every byte value, appending, and strict rejection of
// malformed text (characters, length, whitespace, padding).
#include <string>

#include <gtest/gtest.h>

#include <tether/jsonrpc/base64.hpp>

namespace tether::jsonrpc {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded) << plain;
    EXPECT_EQ(base64_decode(encoded), std::optional<std::string>(plain)) << encoded;
  }
}

TEST(Base64, AllByteValuesRoundTrip) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string encoded = base64_encode(all);
  EXPECT_EQ(encoded.size(), 4 * ((all.size() + 2) / 3));
  EXPECT_EQ(base64_decode(encoded), std::optional<std::string>(all));
  // Every single byte, and every length 0..3 of a varying tail (each padding case).
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    EXPECT_EQ(base64_decode(base64_encode(one)), std::optional<std::string>(one)) << c;
  }
  for (std::size_t n = 0; n <= all.size(); ++n) {
    const std::string prefix = all.substr(0, n);
    ASSERT_EQ(base64_decode(base64_encode(prefix)), std::optional<std::string>(prefix)) << n;
  }
  // NUL bytes and high bytes survive.
  EXPECT_EQ(base64_encode(std::string("\0\xff", 2)), "AP8=");
}

TEST(Base64, EncodeAppendKeepsExistingContent) {
  std::string out = "chunk:";
  base64_encode_append(out, "foobar");
  EXPECT_EQ(out, "chunk:Zm9vYmFy");
  base64_encode_append(out, "");
  EXPECT_EQ(out, "chunk:Zm9vYmFy");
}

TEST(Base64, InvalidCharactersAreRejected) {
  for (const char* text : {"Zm9v!A==", "Zm-_", "Zm9v\x80\x80\x80\x80", "Zm9v.A==", "@@@@"}) {
    EXPECT_FALSE(base64_decode(text)) << text;
  }
  EXPECT_FALSE(base64_decode(std::string("Zm\0v", 4)));
}

TEST(Base64, WrongLengthIsRejected) {
  for (const char* text : {"Z", "Zm", "Zm9", "Zm9vY", "Zg=", "Zg", "Zm9vYmF"}) {
    EXPECT_FALSE(base64_decode(text)) << text;
  }
}

TEST(Base64, WhitespaceIsRejected) {
  for (const char* text :
       {"Zm9v\n", " Zm9v", "Zm9v ", "Zm 9v", "Zm9v\r\n", "Zm9v    ", "Zm\n9vYmFy", "\tZm9",
        "Zg==\n", "Zm8 ", "Zm9\nYmFy", "Zm9 vYmF", "Zm9v\tYmF", " Zm9vYmF", "Zm9vYmF\n"}) {
    EXPECT_FALSE(base64_decode(text)) << '"' << text << '"';
  }
}

TEST(Base64, PaddingOnlyAtTheEnd) {
  for (const char* text : {"=Zm9", "====", "Zg===", "=g==", "Zg=\n"}) {
    EXPECT_FALSE(base64_decode(text)) << text;
  }
  EXPECT_EQ(base64_decode("Zm8="), std::optional<std::string>("fo"));
  EXPECT_EQ(base64_decode("Zg=="), std::optional<std::string>("f"));
}

// '=' inside the text (not only as the final padding) must be rejected, not decoded.
TEST(Base64, PaddingInsideTheTextIsRejected) {
  for (const char* text : {"Zg==Zm9v", "Zm=v", "Z=9v", "Zg=A", "Z===", "Zm8=Zm8=", "AAA=AAAA"}) {
    EXPECT_FALSE(base64_decode(text)) << text;
  }
}

}  // namespace
}  // namespace tether::jsonrpc
