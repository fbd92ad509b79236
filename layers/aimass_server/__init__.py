"""Server mode: every model of the store on long-lived worker processes that share one port.

What ``aimass serve`` runs and what a function image's ``server`` stage runs (``python -m aimass_server``, for
ECS/Fargate, a GPU host or ``docker run``): the same workers, protocol and sizing, without the operator CLI. It
sits beside the serving core, not in it: the core never imports uvicorn (its Lambda images carry none), and this
package never imports the operator tools (typer, rich), so an image can carry it alone.

The modules, by role: ``held`` (the middleware telling the app what its worker holds), ``protocol`` (uvicorn's
httptools protocol with TCP_NODELAY), ``sizing`` (workers and ONNX Runtime threads from the cores), ``worker``
(each worker's app factory), ``launch`` (the supervisor's start), ``__main__`` (the container's entry, settings
from the environment) and ``health`` (the image's HEALTHCHECK, standard library only).

Nothing is imported here, so that ``python -m aimass_server.health`` stays a few milliseconds of work.
"""
