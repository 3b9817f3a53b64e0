"""The dashboard's web side: FastAPI routes, pages, charts, shading, live updates, access.

Routes only (``app``) over ``dashboards.data``; what each page shows (``pages``), plotly
figures (``charts``), attention as HTML (``shading``), server-sent events (``live``), the
posted form (``forms``), templates and static files (``views``, ``templates/``,
``static/``), the token guard and sign-in (``auth``), Alertmanager's webhook receiver
(``hooks``).  May import ``dashboards.data`` and ``pipeline``.
"""
