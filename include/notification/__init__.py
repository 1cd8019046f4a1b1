"""Mail for billing staff: the daily status summary (``render``) and how any of our mails go out (``mail``)."""
