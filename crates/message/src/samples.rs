//! Sample messages for the tests of this crate and of the crates that render messages
//! (IMAP), so that every test reads the same structures.

/// A multipart/mixed with a multipart/alternative (quoted-printable text and HTML), an
/// attached message and a base64 PDF; encoded words, groups (one empty) in the header, a
/// preamble and an epilogue.
pub const NESTED: &[u8] = b"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n\
To: Max <max@acme.example>, team: a@x.example, b@y.example;\r\n\
Cc: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;, foo:;\r\n\
Subject: =?UTF-8?B?R3LDvMOfZQ==?= and more\r\n\
Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
Message-ID: <m1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Hallo Welt=0A\r\n\
zweite Zeile\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Hallo</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
Content-Disposition: attachment; filename=\"fwd.eml\"\r\n\
\r\n\
From: Anna <anna@example.net>\r\n\
Subject: inner\r\n\
\r\n\
inner body\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0=\r\n\
--outer--\r\n\
epilogue\r\n";
