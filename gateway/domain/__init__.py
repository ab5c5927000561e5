"""The shared floor under services and sync: the rules both apply to Calgate's data.

Ids, the managed key, the mirror's rules (what a grant lets it keep, applying a change set),
sealing event text with the account's data key, queueing notifications in the transaction
that caused them, and opening a profile's upstream account. It imports only persistence,
secrets, observe and the providers; services and sync import it, never each other.
"""
