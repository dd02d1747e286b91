"""A StatusNotifierWatcher on the test's private session bus, so the app's tray icon registers
with us, a client for the tray's menu (com.canonical.dbusmenu): read it, click items; and the
desktop's notification service (org.freedesktop.Notifications), which records what the app shows."""
import asyncio
import threading
import time

from dbus_next import Message, MessageType, Variant
from dbus_next.aio import MessageBus
from dbus_next.service import PropertyAccess, ServiceInterface, dbus_property, method


class _Watcher(ServiceInterface):
    def __init__(self):
        super().__init__("org.kde.StatusNotifierWatcher")

    @method()
    def RegisterStatusNotifierHost(self, service: "s"):  # noqa: F821
        pass

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> "as":  # noqa: F821
        return []

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> "b":  # noqa: F821
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> "i":  # noqa: F821
        return 0


class _Notifications(ServiceInterface):
    """Records every notification instead of showing it."""

    def __init__(self, received):
        super().__init__("org.freedesktop.Notifications")
        self.received = received

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s", body: "s",  # noqa: F821
               actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":  # noqa: F821
        self.received.append({"app": app_name, "summary": summary, "body": body})
        return len(self.received)

    @method()
    def GetCapabilities(self) -> "as":  # noqa: F821
        return ["body"]

    @method()
    def GetServerInformation(self) -> "ssss":  # noqa: F821
        return ["assemble-ui-tests", "assemble", "1.0", "1.2"]

    @method()
    def CloseNotification(self, id: "u"):  # noqa: F821
        pass


class Tray:
    """Owns org.kde.StatusNotifierWatcher and drives the registered item's menu."""

    def __init__(self, bus_address=None):
        """On the session bus of $DBUS_SESSION_BUS_ADDRESS, or on the one at `bus_address`."""
        self.bus_address = bus_address
        self.items = []  # (bus name, object path) in registration order
        self.notifications = []  # {app, summary, body} in the order shown
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        if not self._ready.wait(10):
            raise RuntimeError("the D-Bus watcher did not start")

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self):
        self.bus = await MessageBus(bus_address=self.bus_address).connect()
        self.bus.add_message_handler(self._on_message)
        self.bus.export("/StatusNotifierWatcher", _Watcher())
        await self.bus.request_name("org.kde.StatusNotifierWatcher")
        self.bus.export("/org/freedesktop/Notifications", _Notifications(self.notifications))
        await self.bus.request_name("org.freedesktop.Notifications")

    def _on_message(self, message):
        # Handled by hand to learn the sender, which the item's path alone does not tell.
        if message.interface == "org.kde.StatusNotifierWatcher" and message.member == "RegisterStatusNotifierItem":
            arg = message.body[0]
            if arg.startswith("/"):
                self.items.append((message.sender, arg))
            else:
                self.items.append((arg, "/StatusNotifierItem"))
            return Message.new_method_return(message)
        return None

    def _call(self, coroutine, timeout=10):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _request(self, destination, path, interface, member, signature, body):
        reply = await self.bus.call(Message(destination=destination, path=path, interface=interface,
                                             member=member, signature=signature, body=body))
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{member} failed: {reply.error_name} {reply.body}")
        return reply.body

    def wait_for_item(self, timeout=20):
        deadline = time.time() + timeout
        while not self.items:
            if time.time() > deadline:
                raise AssertionError("the app never registered a tray item (StatusNotifierItem)")
            time.sleep(0.1)
        return self.items[-1]

    def _menu_address(self):
        service, path = self.wait_for_item()
        menu = self._call(self._request(service, path, "org.freedesktop.DBus.Properties", "Get", "ss",
                                        ["org.kde.StatusNotifierItem", "Menu"]))[0]
        return service, menu.value

    def menu(self):
        """The menu's items as [{id, label, enabled}], separators left out."""
        service, menu_path = self._menu_address()
        _, layout = self._call(self._request(service, menu_path, "com.canonical.dbusmenu", "GetLayout", "iias",
                                             [0, -1, []]))
        items = []

        def walk(node):
            item_id, props, children = node
            label = props.get("label")
            if label is not None and props.get("type", Variant("s", "")).value != "separator":
                enabled = props.get("enabled", Variant("b", True)).value
                items.append({"id": item_id, "label": label.value.replace("_", ""), "enabled": enabled})
            for child in children:
                walk(child.value)

        walk(layout)
        return items

    def item(self, label):
        for entry in self.menu():
            if entry["label"] == label or entry["label"].startswith(label):
                return entry
        raise AssertionError(f"no tray menu item {label!r} in {self.menu()}")

    def click(self, label):
        entry = self.item(label)
        assert entry["enabled"], f"tray item {label!r} is disabled: {self.menu()}"
        service, menu_path = self._menu_address()
        self._call(self._request(service, menu_path, "com.canonical.dbusmenu", "Event", "isvu",
                                 [entry["id"], "clicked", Variant("s", ""), 0]))
