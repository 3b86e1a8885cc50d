from recon import create_app

celery = create_app().extensions["celery"]
