"""Exchange Server on-premises (2016, 2019, Subscription Edition) through EWS with
exchangelib, run in worker threads. Exchange Online is reached through Microsoft Graph
(``providers.microsoft``): an Online mailbox entered here is sent there."""
