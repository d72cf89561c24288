#!/usr/bin/python3
"""A stand-in desktop notification server for tests/notify.rs, written on GLib's own D-Bus
implementation (Debian's python3-gi) so that what oomward sends is checked by a peer it did
not write.

It owns org.freedesktop.Notifications on the session bus whose socket is its one argument,
says it reads markup (so the tests see bodies escaped), and prints one JSON line per Notify
call: {"app":..,"summary":..,"body":..,"urgency":..}, answering with a new id. The first line
is {"ready": "<its unique name>"} once the name is its own. It exits when the bus goes away.

Usage: notify_server.py /run/user/UID/bus
"""

import json
import sys

from gi.repository import Gio, GLib

NAME = "org.freedesktop.Notifications"
OBJECT = "/org/freedesktop/Notifications"
INTERFACE = """
<node>
  <interface name="org.freedesktop.Notifications">
    <method name="GetCapabilities">
      <arg type="as" direction="out"/>
    </method>
    <method name="Notify">
      <arg type="s" direction="in"/>
      <arg type="u" direction="in"/>
      <arg type="s" direction="in"/>
      <arg type="s" direction="in"/>
      <arg type="s" direction="in"/>
      <arg type="as" direction="in"/>
      <arg type="a{sv}" direction="in"/>
      <arg type="i" direction="in"/>
      <arg type="u" direction="out"/>
    </method>
  </interface>
</node>
"""


def say(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: notify_server.py BUS_SOCKET\n")
        return 2
    flags = (
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    )
    conn = Gio.DBusConnection.new_for_address_sync(
        "unix:path=" + sys.argv[1], flags, None, None
    )
    conn.set_exit_on_close(False)
    loop = GLib.MainLoop()
    conn.connect("closed", lambda *_: loop.quit())
    ids = [0]

    def call(_conn, _sender, _path, _iface, method, args, invocation):
        if method == "GetCapabilities":
            invocation.return_value(GLib.Variant("(as)", (["body", "body-markup"],)))
            return
        app, _replaces, _icon, summary, body, _actions, hints, _timeout = args.unpack()
        ids[0] += 1
        say(
            {
                "app": app,
                "summary": summary,
                "body": body,
                "urgency": hints.get("urgency"),
            }
        )
        invocation.return_value(GLib.Variant("(u)", (ids[0],)))

    node = Gio.DBusNodeInfo.new_for_xml(INTERFACE)
    conn.register_object(OBJECT, node.interfaces[0], call, None, None)
    Gio.bus_own_name_on_connection(
        conn,
        NAME,
        Gio.BusNameOwnerFlags.DO_NOT_QUEUE,
        lambda c, _name: say({"ready": c.get_unique_name()}),
        lambda _c, _name: loop.quit(),
    )
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
