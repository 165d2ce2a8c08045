"""The web widget's server side: visitor sessions (anonymous by resume key, or identified by
a token the company's backend signs) and the widget's public configuration. The pages
themselves (loader, frame) live in ``warbler/web/widget/``."""
