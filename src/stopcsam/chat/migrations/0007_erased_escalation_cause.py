from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0006_erased_escalation"),
    ]

    operations = [
        migrations.AddField(
            model_name="erasedescalation",
            name="cause",
            field=models.CharField(
                choices=[("erasure", "Erasure"), ("retention", "Retention")],
                default="erasure",
                max_length=9,
            ),
        ),
    ]
