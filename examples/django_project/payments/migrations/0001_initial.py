from typing import ClassVar

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: ClassVar[list[tuple[str, str]]] = []
    operations: ClassVar[list[migrations.operations.base.Operation]] = [
        migrations.CreateModel(
            name="Payment",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("investor_id", models.CharField(max_length=64)),
                ("pool_id", models.CharField(max_length=64)),
                ("amount", models.DecimalField(decimal_places=2, max_digits=20)),
                ("timestamp", models.DateTimeField()),
                ("kind", models.CharField(default="investment", max_length=16)),
            ],
        ),
    ]
