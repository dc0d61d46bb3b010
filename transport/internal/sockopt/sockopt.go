// Package sockopt holds what the socket transports (tcp, unix, kcp) need
// to know about the OS: how to make a bind exclusive, and which errors
// mean "address in use", "connection refused" and "port unreachable".
// Everything else about sockets is portable in package net.
package sockopt
