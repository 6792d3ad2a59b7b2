"""Inbound corpus: .eml files, their manifest and the test that asserts every one."""
