from django.db import models


class Payment(models.Model):
    """The host application's own record of an investment: the model the library watches."""

    investor_id = models.CharField(max_length=64)
    pool_id = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    timestamp = models.DateTimeField()
    kind = models.CharField(max_length=16, default="investment")
