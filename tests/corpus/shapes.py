"""Trace headers in the shapes real mail systems write, for the corpus and tests/mail.

Each function returns the header lines a system adds on the way in, top first, as they appear
in the message the bot fetches. The shapes follow the systems' own documentation and the
headers they are documented to write:

- Exchange Online: Microsoft Learn, "Anti-spam message headers in Microsoft 365" (the
  Authentication-results field without an authserv-id: spf, dkim, dmarc with action,
  compauth with reason; Received-SPF; Authentication-Results-Original), and the
  "via Frontend Transport" Received header of EOP's inbound frontend
  (*.mail.protection.outlook.com) under the tenant's own *.prod.outlook.com hops.
  X-MS-Exchange-Organization-AuthAs: "Header firewall" in Exchange Server's documentation
  (organisation headers from outside are removed).
- Mimecast in front of on-premises Exchange: Mimecast's "Authentication-Results:
  relay.mimecast.com; ..." header above its "by relay.mimecast.com with ESMTP" Received, then
  the council's own Exchange hops (*.exampleshire.local).
- Gmail / Google Workspace: "Authentication-Results: mx.google.com; dkim=... spf=(google.com:
  domain of ... designates ... as permitted sender) ... dmarc=(p=... sp=... dis=...)" written
  just below Google's own "by mx.google.com with ESMTPS" Received, with Received-SPF.
- Postfix with OpenDKIM and OpenDMARC: one Authentication-Results header per milter, each
  naming the host (OpenDKIM's "dkim=pass (2048-bit key; unprotected)" comment; OpenDMARC's
  "dmarc=none (p=none dis=none)"), above Postfix's "by host (Postfix)" Received.
- A relay that rewrites senders (an NHSmail-style secure gateway): Sender Rewriting Scheme
  envelope (SRS0=...) so SPF aligns with the relay, and a DKIM signature of the relay's own.
"""

from __future__ import annotations

DATE = "Thu, 5 Mar 2026 09:58:01 +0000"


def exchange_online(domain: str, verdict: str = "pass", *, entry: bool = True,
                    results: bool = True, below: str = "", auth_as: str = "Anonymous") -> str:
    """Exchange Online's hops and results for mail from domain (verdict: pass or fail)."""
    tenant = [
        "Received: from AM6PR04MB1234.eurprd04.prod.outlook.com (2603:10a6:20b:e2::11) by\r\n"
        f" DB9PR04MB5678.eurprd04.prod.outlook.com with HTTPS; {DATE}\r\n",
        "Received: from DU2PR04CA0123.eurprd04.prod.outlook.com (2603:10a6:10:234::8) by\r\n"
        " AM6PR04MB1234.eurprd04.prod.outlook.com (2603:10a6:20b:e2::11) with Microsoft SMTP\r\n"
        f" Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id\r\n"
        f" 15.20.7386.20; {DATE}\r\n",
        "Received: from DB1PEPF000509E4.eurprd03.prod.outlook.com (2603:10a6:18:3c::4) by\r\n"
        " DU2PR04CA0123.outlook.office365.com (2603:10a6:10:234::8) with Microsoft SMTP\r\n"
        f" Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.7386.20 via\r\n"
        f" Frontend Transport; {DATE}\r\n",
    ]
    lines = list(tenant)
    if results:
        lines.append(eop_results(domain, verdict))
        lines.append(
            f"Received-SPF: {'Pass' if verdict == 'pass' else 'Fail'} (protection.outlook.com:"
            f" domain of {domain} designates 203.0.113.5 as permitted sender)\r\n"
            " receiver=protection.outlook.com; client-ip=203.0.113.5;\r\n"
            f" helo=mail.{domain}; pr=C\r\n")
    if entry:
        lines.append(
            f"Received: from mail.{domain} (203.0.113.5) by\r\n"
            " DB1PEPF000509E4.mail.protection.outlook.com (10.167.242.70) with Microsoft SMTP\r\n"
            " Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.7386.20 via\r\n"
            f" Frontend Transport; {DATE}\r\n")
    lines.append(below)
    lines.append(f"X-MS-Exchange-Organization-AuthAs: {auth_as}\r\n")
    return "".join(lines)


def eop_results(domain: str, verdict: str = "pass", name: str = "Authentication-Results") -> str:
    """EOP's own results header: no authserv-id, Microsoft's spacing and properties."""
    if verdict == "pass":
        return (f"{name}: spf=pass (sender IP is 203.0.113.5)\r\n smtp.mailfrom={domain};"
                f" dkim=pass (signature was verified)\r\n header.d={domain};dmarc=pass"
                f" action=none\r\n header.from={domain};compauth=pass reason=100\r\n")
    return (f"{name}: spf=fail (sender IP is 198.51.100.7)\r\n smtp.mailfrom={domain};"
            " dkim=none (message not signed)\r\n header.d=none;dmarc=fail action=quarantine\r\n"
            f" header.from={domain};compauth=fail reason=000\r\n")


def sender_hop(domain: str, host: str = "") -> str:
    """Return the Received header the sender's own server wrote (outside every boundary)."""
    host = host or f"mail.{domain}"
    return f"Received: from laptop (unknown [192.0.2.55]) by {host} with ESMTPSA; {DATE}\r\n"


def exchange_internal(auth_as: str = "Internal") -> str:
    """Mail sent inside the tenant: Microsoft hops only, no results, AuthAs Internal."""
    return (
        "Received: from AM6PR04MB1234.eurprd04.prod.outlook.com (2603:10a6:20b:e2::11) by\r\n"
        f" DB9PR04MB5678.eurprd04.prod.outlook.com with HTTPS; {DATE}\r\n"
        "Received: from DB9PR04MB9999.eurprd04.prod.outlook.com ([fe80::1]) by\r\n"
        " DB9PR04MB9999.eurprd04.prod.outlook.com ([fe80::1%5]) with mapi id 15.20.7386.20;\r\n"
        f" {DATE}\r\n"
        f"X-MS-Exchange-Organization-AuthAs: {auth_as}\r\n"
        "X-MS-Exchange-Organization-AuthSource: DB9PR04MB9999.eurprd04.prod.outlook.com\r\n")


def mimecast(domain: str, verdict: str = "pass", below: str = "") -> str:
    """Mimecast's results and hop, under the council's on-premises Exchange hops."""
    dmarc = "pass (policy=reject)" if verdict == "pass" else "fail (policy=reject)"
    return (
        "Received: from EXCH01.exampleshire.local (10.0.0.5) by EXCH02.exampleshire.local\r\n"
        f" (10.0.0.6) with Microsoft SMTP Server id 15.2.1258.12; {DATE}\r\n"
        "Received: from eu-smtp-delivery-151.mimecast.com (185.58.86.151) by\r\n"
        f" EXCH01.exampleshire.local (10.0.0.5) with Microsoft SMTP Server; {DATE}\r\n"
        "X-MC-Unique: Ab1Cd2Ef3Gh4Ij5Kl6Mn7\r\n"
        f"Authentication-Results: relay.mimecast.com;\r\n dkim={verdict} header.d={domain}"
        f" header.s=selector1 header.b=AbCdEf12;\r\n dmarc={dmarc} header.from={domain};\r\n"
        f" spf={verdict} (relay.mimecast.com: domain of lee@{domain} designates 203.0.113.5"
        f" as\r\n permitted sender) smtp.mailfrom=lee@{domain}\r\n"
        f"Received: from mail.{domain} (mail.{domain} [203.0.113.5]) by relay.mimecast.com"
        f" with\r\n ESMTP with STARTTLS (version=TLSv1.2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM"
        f"_SHA384)\r\n id uk-mta-12-AbCdEf; {DATE}\r\n" + below)


def gmail(domain: str, verdict: str = "pass", below: str = "") -> str:
    """Google's hops and results: the results sit just below its mx.google.com hop."""
    policy = "(p=REJECT sp=REJECT dis=NONE)" if verdict == "pass" else (
        "(p=REJECT sp=REJECT dis=REJECT)")
    return (
        "Delivered-To: rapidreview@exampleshire.example\r\n"
        "Received: by 2002:a05:7300:5b8c:b0:fa:1b2c:3d4e with SMTP id p12csp123456dyb;\r\n"
        f" {DATE}\r\n"
        "X-Received: by 2002:a17:906:c14e:b0:a1:2b3c:4d5e with SMTP id\r\n"
        f" k14-20020a170906c14e00b00a12b3c4d5emr1234567ejz.12.1709632681234; {DATE}\r\n"
        f"Return-Path: <lee@{domain}>\r\n"
        f"Received: from mail.{domain} (mail.{domain}. [203.0.113.5])\r\n"
        f" by mx.google.com with ESMTPS id a1-20020a5d4d81000000b0033e12345678si1234567wru.9;"
        f"\r\n {DATE}\r\n"
        f"Received-SPF: {verdict} (google.com: domain of lee@{domain} designates 203.0.113.5 as"
        "\r\n permitted sender) client-ip=203.0.113.5;\r\n"
        f"Authentication-Results: mx.google.com;\r\n       dkim={verdict}"
        f" header.i=@{domain} header.s=s1 header.b=AbC12345;\r\n"
        f"       spf={verdict} (google.com: domain of lee@{domain} designates 203.0.113.5 as"
        f"\r\n permitted sender) smtp.mailfrom=lee@{domain};\r\n"
        f"       dmarc={verdict} {policy} header.from={domain}\r\n" + below)


def opendkim(domain: str, *, dmarc: str = "none (p=none dis=none)", dkim: str = "pass",
             spf: str = "", host: str = "mx.exampleshire.example") -> str:
    """Postfix with OpenDMARC and OpenDKIM: one results header per milter."""
    spf = spf or f"pass smtp.mailfrom={domain}"
    return (
        f"Authentication-Results: {host}; dmarc={dmarc} header.from={domain}\r\n"
        f"Authentication-Results: {host};\r\n\tdkim={dkim} (2048-bit key; unprotected)"
        f" header.d={domain}\r\n\theader.i=@{domain} header.a=rsa-sha256 header.s=mail"
        f" header.b=\"AbCdEfGh\";\r\n\tdkim-atps=neutral\r\n"
        f"Authentication-Results: {host}; spf={spf}\r\n"
        f"Received: from mail.{domain} (mail.{domain} [203.0.113.5]) by {host} (Postfix) with\r\n"
        f"\tESMTPS id 4Q1abc2DefzGh for <rapidreview@exampleshire.example>; {DATE}\r\n")


def rewriting_relay(domain: str, *, dkim_intact: bool = True,
                    host: str = "mx.exampleshire.example") -> str:
    """Return a secure gateway's headers: envelope rewritten (SRS), its own DKIM key."""
    relay = "relay.securemail.example"
    original = "pass" if dkim_intact else "fail (body hash did not verify)"
    dmarc = "pass" if dkim_intact else "fail (p=quarantine dis=quarantine)"
    return (
        f"Authentication-Results: {host};\r\n\tdkim={original} header.d={domain}"
        f" header.s=mail;\r\n\tdkim=pass header.d={relay} header.s=gw1;\r\n"
        f"\tspf=pass smtp.mailfrom=SRS0=Ab12=KX={domain}=lee@{relay};\r\n"
        f"\tdmarc={dmarc} header.from={domain}\r\n"
        f"Received: from gw1.{relay} (gw1.{relay} [198.51.100.20]) by {host} (Postfix)\r\n"
        f"\twith ESMTPS id 4Q9xyz; {DATE}\r\n"
        f"Received: from mail.{domain} (mail.{domain} [203.0.113.5]) by gw1.{relay} with\r\n"
        f"\tESMTPS id 1a2b3c; {DATE}\r\n")
