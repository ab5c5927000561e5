"""Microsoft 365 and Outlook.com through Microsoft Graph: ``config`` where Microsoft is,
``scopes`` the one scope table, ``errors`` Graph and identity failures onto the provider
error tree, ``payloads`` the raw Graph JSON, ``times`` dateTimeTimeZone values and zones,
``mapping`` Graph to the model, ``drafts`` the model to Graph bodies, ``sync`` the
deltaLink cursor."""
