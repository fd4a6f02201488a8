#!/usr/bin/env node
// iocp-bench: runs the node-iocp benchmark suites (see DESIGN.md §4). Stub for now.

process.stdout.write('iocp-bench: not yet implemented\n')
