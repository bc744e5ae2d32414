"""Dates and times as staff read them in the admin: to the second, one unambiguous form
(ten events in one minute no longer all read "7:19 a.m.")."""

DATETIME_FORMAT = "Y-m-d H:i:s"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
