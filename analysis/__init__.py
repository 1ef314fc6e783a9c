"""The analysis, with no Django: the MRMC analysis and its verdict, the report's statistics, arms,
agreement, reading times and their timing rules, the shortcut and copying checks, the sample-size
planner and the record's hash chain. Every app may import it; it imports no app (checked in CI)."""
