"""The glue between a returns platform and Brightpearl: connections, sync services, tasks,
webhook views, sync logs and the admin."""
